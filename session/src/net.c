/* Network namespace setup inside the sandbox. */
#include "sandbox_int.h"

#include "airlock/cleanup.h"
#include "airlock/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

int sb_net_loopback_up(void)
{
    cleanup_fd int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "socket for lo");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "lo", 3);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        return al_error_set_errno(AL_EIO, errno, "get lo flags");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
        return al_error_set_errno(AL_EIO, errno, "bring lo up");
    return 0;
}

int sb_net_hook(pid_t pid, sb_netns_fn fn, void *payload)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
    cleanup_fd int netns = open(path, O_RDONLY | O_CLOEXEC);
    if (netns < 0)
        return al_error_set_errno(AL_EIO, errno, "open %s", path);
    /* The hook's own message, if it set one, is the one reported. */
    return fn(netns, payload) != 0 ? AL_ERROR : 0;
}
