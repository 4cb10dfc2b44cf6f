#!/usr/bin/env bash
# Checks the Kubernetes manifests (deploy/kubernetes, docs/cluster.md):
# every YAML parses, the DaemonSet is privileged with hostNetwork and
# without hostPID, mounts the state dir and the cgroup tree read-write,
# takes the node id and address from the Kubernetes node, mounts the
# database conninfo and the keys from the secrets that secret.example.yaml
# defines, probes /healthz (readiness /healthz?ready=1), declares the ports
# 7070 and 7071, and the Service exposes 7070 only. The configmap's
# airlockd.json, rendered as the pod renders it, must pass
# `airlockd --check-config`. kubeconform runs too when it is installed.
#   deploy/check-k8s.sh [--airlockd PATH] [DIR]   DIR: deploy/kubernetes
#   deploy/check-k8s.sh --self-test [--airlockd PATH]
#       also proves the checks fail on broken copies (hostPID: true, no
#       privileged, the node port in the Service, no readiness probe)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
airlockd=""
self_test=0
dir="$here/kubernetes"
while [ $# -gt 0 ]; do
  case "$1" in
    --airlockd) airlockd=$2; shift 2 ;;
    --self-test) self_test=1; shift ;;
    -*) echo "check-k8s: unknown option $1" >&2; exit 2 ;;
    *) dir=$1; shift ;;
  esac
done
if [ -z "$airlockd" ] && [ -x "$here/../build/airlockd/airlockd" ]; then
  airlockd="$here/../build/airlockd/airlockd"
fi
if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "check-k8s: python3-yaml is missing (deploy/install-deps.sh installs it)" >&2
  exit 1
fi

# check DIR: 0 when the manifests in DIR pass, else 1 with the reasons
check() {
  local d=$1 scratch rc=0
  scratch=$(mktemp -d /tmp/airlock-check-k8s-XXXXXX)
  python3 - "$d" "$scratch" <<'PY' || rc=1
import glob, json, os, sys, yaml
d, scratch = sys.argv[1], sys.argv[2]
bad = []
def need(cond, what):
    if not cond:
        bad.append(what)
docs = {}
for f in sorted(glob.glob(os.path.join(d, "*.yaml"))):
    try:
        for doc in yaml.safe_load_all(open(f)):
            if doc:
                docs.setdefault(doc.get("kind"), []).append(doc)
    except yaml.YAMLError as e:
        bad.append("%s: not YAML: %s" % (os.path.basename(f), e))
for kind in ("Namespace", "Secret", "ConfigMap", "DaemonSet", "Service"):
    need(kind in docs, "no %s" % kind)
if bad:
    print("\n".join("check-k8s: " + b for b in bad)); sys.exit(1)
for kind, items in docs.items():
    for o in items:
        if kind != "Namespace":
            need(o.get("metadata", {}).get("namespace") == "airlock",
                 "%s %s: not in namespace airlock" % (kind, o.get("metadata", {}).get("name")))
secrets = {s["metadata"]["name"]: set((s.get("data") or {}).keys()) | set((s.get("stringData") or {}).keys())
           for s in docs["Secret"]}
need("conninfo" in secrets.get("airlock-db", ()), "secret airlock-db has no conninfo")
need({"cluster.key", "master.key"} <= secrets.get("airlock-keys", set()),
     "secret airlock-keys lacks cluster.key or master.key")
ds = docs["DaemonSet"][0]
pod = ds["spec"]["template"]["spec"]
need(pod.get("hostNetwork") is True, "DaemonSet: hostNetwork must be true")
need(pod.get("hostPID", False) is False, "DaemonSet: hostPID must be false")
need(pod.get("hostIPC", False) is False, "DaemonSet: hostIPC must be false")
need(isinstance(pod.get("terminationGracePeriodSeconds"), int), "DaemonSet: no terminationGracePeriodSeconds")
cs = [c for c in pod.get("containers", []) if c.get("name") == "airlockd"]
need(len(cs) == 1, "DaemonSet: no container airlockd")
c = cs[0] if cs else {}
need((c.get("securityContext") or {}).get("privileged") is True, "DaemonSet: airlockd must be privileged")
env = {e["name"]: e for e in c.get("env", [])}
def field(name):
    return ((env.get(name) or {}).get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath")
need(field("AIRLOCK_NODE_ID") == "spec.nodeName", "DaemonSet: AIRLOCK_NODE_ID from spec.nodeName")
need(field("AIRLOCK_HOST_IP") == "status.hostIP", "DaemonSet: AIRLOCK_HOST_IP from status.hostIP")
ports = {p.get("containerPort") for p in c.get("ports", [])}
need({7070, 7071} <= ports, "DaemonSet: container ports 7070 and 7071")
lp = ((c.get("livenessProbe") or {}).get("httpGet") or {})
rp = ((c.get("readinessProbe") or {}).get("httpGet") or {})
need(lp.get("path") == "/healthz" and lp.get("port") == 7070, "DaemonSet: liveness GET /healthz on 7070")
need(rp.get("path") == "/healthz?ready=1" and rp.get("port") == 7070,
     "DaemonSet: readiness GET /healthz?ready=1 on 7070")
vols = {v["name"]: v for v in pod.get("volumes", [])}
mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
def vol_at(path):
    m = mounts.get(path)
    return (vols.get(m["name"]) if m else None), m
v, m = vol_at("/var/lib/airlock")
need(v is not None and (v.get("hostPath") or {}).get("path") == "/var/lib/airlock" and not m.get("readOnly"),
     "DaemonSet: /var/lib/airlock must be the host's, read-write")
v, m = vol_at("/sys/fs/cgroup")
need(v is not None and (v.get("hostPath") or {}).get("path") == "/sys/fs/cgroup" and not m.get("readOnly"),
     "DaemonSet: /sys/fs/cgroup must be the host's, read-write")
def secret_dir(name):
    for path, m in mounts.items():
        if (vols.get(m["name"], {}).get("secret") or {}).get("secretName") == name:
            return path
    return None
dbdir, keydir = secret_dir("airlock-db"), secret_dir("airlock-keys")
need(dbdir is not None, "DaemonSet: secret airlock-db is not mounted")
need(keydir is not None, "DaemonSet: secret airlock-keys is not mounted")
cfgdir = None
for path, m in mounts.items():
    if (vols.get(m["name"], {}).get("configMap") or {}).get("name") == "airlockd":
        cfgdir = path
need(cfgdir is not None, "DaemonSet: configmap airlockd is not mounted")
cmd = " ".join(c.get("command", []) + c.get("args", []))
need(cfgdir is not None and ("%s/airlockd.json" % cfgdir) in cmd, "DaemonSet: the command does not read the configmap's airlockd.json")
svc = docs["Service"][0]
sports = [(p.get("port"), p.get("targetPort")) for p in svc["spec"].get("ports", [])]
need(sports and all(p == 7070 and t in (7070, "api") for p, t in sports), "Service: only the API port 7070 (got %s)" % sports)
need(svc["spec"].get("type", "ClusterIP") in ("ClusterIP", "LoadBalancer", "NodePort"), "Service: type")
cm = docs["ConfigMap"][0]
try:
    raw = cm["data"]["airlockd.json"]
    conf = json.loads(raw.replace("@NODE_ID@", "node-a").replace("@HOST_IP@", "10.0.0.5"))
except (KeyError, ValueError) as e:
    bad.append("ConfigMap: airlockd.json: %s" % e); conf = {}
store, cl = conf.get("store", {}), conf.get("cluster")
need(store.get("driver") == "postgres", "airlockd.json: store.driver must be postgres")
need(dbdir is not None and store.get("conninfo_file") == dbdir + "/conninfo",
     "airlockd.json: store.conninfo_file must be the mounted secret's conninfo")
need(isinstance(cl, dict), "airlockd.json: no cluster section")
if isinstance(cl, dict):
    need(keydir is not None and cl.get("key_file") == keydir + "/cluster.key",
         "airlockd.json: cluster.key_file must be the mounted secret's cluster.key")
    need(str(cl.get("listen", "")).endswith(":7071") and str(cl.get("advertise", "")).endswith(":7071"),
         "airlockd.json: cluster.listen/advertise on port 7071")
need(str(conf.get("listen", "")).endswith(":7070"), "airlockd.json: listen on port 7070")
need(keydir is not None and conf.get("proxies", {}).get("master_key") == keydir + "/master.key",
     "airlockd.json: proxies.master_key must be the mounted secret's master.key")
if "gitproxy.json" in cm.get("data", {}):
    try:
        json.loads(cm["data"]["gitproxy.json"])
    except ValueError as e:
        bad.append("ConfigMap: gitproxy.json: %s" % e)
with open(os.path.join(scratch, "airlockd.json"), "w") as f:
    json.dump(conf, f)
if bad:
    print("\n".join("check-k8s: " + b for b in bad)); sys.exit(1)
PY
  if [ $rc -eq 0 ] && [ -n "$airlockd" ]; then
    if ! out=$("$airlockd" --check-config --config "$scratch/airlockd.json" 2>&1); then
      echo "check-k8s: airlockd --check-config on the configmap's airlockd.json: $out"
      rc=1
    fi
  fi
  if [ $rc -eq 0 ] && command -v kubeconform >/dev/null 2>&1; then
    kubeconform -strict -summary "$d"/*.yaml || rc=1
  fi
  rm -rf "$scratch"
  return $rc
}

if [ -z "$airlockd" ]; then
  echo "check-k8s: airlockd not built: the configmap is checked without --check-config"
fi
check "$dir" || { echo "check-k8s: $dir FAILED" >&2; exit 1; }
echo "check-k8s: $dir ok${airlockd:+ (airlockd --check-config: configuration ok)}"
[ $self_test -eq 1 ] || exit 0

# --self-test: each broken copy must be refused
broken() { # NAME PYTHON-EDIT
  local name=$1 edit=$2 t
  t=$(mktemp -d /tmp/airlock-check-k8s-XXXXXX)
  cp "$dir"/*.yaml "$t"/
  python3 - "$t" <<PY
import glob, os, sys, yaml
t = sys.argv[1]
for f in glob.glob(os.path.join(t, "*.yaml")):
    docs = list(yaml.safe_load_all(open(f)))
    for o in docs:
        if not o:
            continue
$edit
    yaml.safe_dump_all(docs, open(f, "w"))
PY
  if check "$t" >"$t.out" 2>&1; then
    echo "check-k8s self-test: $name was accepted" >&2
    rm -rf "$t" "$t.out"
    return 1
  fi
  echo "check-k8s self-test: $name refused: $(grep -m1 'check-k8s:' "$t.out" || true)"
  rm -rf "$t" "$t.out"
}
pod='o["spec"]["template"]["spec"]'
broken "hostPID: true" "        if o['kind'] == 'DaemonSet': ${pod}['hostPID'] = True"
broken "no privileged" "        if o['kind'] == 'DaemonSet': ${pod}['containers'][0]['securityContext'].pop('privileged')"
broken "privileged: false" "        if o['kind'] == 'DaemonSet': ${pod}['containers'][0]['securityContext']['privileged'] = False"
broken "node port in the Service" "        if o['kind'] == 'Service': o['spec']['ports'].append({'name': 'cluster', 'port': 7071, 'targetPort': 7071})"
broken "no readiness probe" "        if o['kind'] == 'DaemonSet': ${pod}['containers'][0].pop('readinessProbe')"
broken "cgroup read-only" "        if o['kind'] == 'DaemonSet': [m.update(readOnly=True) for m in ${pod}['containers'][0]['volumeMounts'] if m['mountPath'] == '/sys/fs/cgroup']"
[ -z "$airlockd" ] || broken "config refused by airlockd" "        if o['kind'] == 'ConfigMap': o['data']['airlockd.json'] = o['data']['airlockd.json'].replace('\"down_after_ms\": 15000', '\"down_after_ms\": 1000')"
echo "check-k8s self-test: ok"
