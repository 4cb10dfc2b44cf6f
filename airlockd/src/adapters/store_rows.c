/* Cell readers shared by the stores (store_rows.h). */
#include "store_rows.h"

const char *ald_rows_str(const struct ald_db_rows *r, int row, int col)
{
    const char *t = ald_db_text(r, row, col);
    return t ? t : "";
}

json_t *ald_rows_json(const struct ald_db_rows *r, int row, int col)
{
    const char *t = ald_db_text(r, row, col);
    return t ? json_loadb(t, ald_db_len(r, row, col), 0, NULL) : NULL;
}
