# SPDX-License-Identifier: MIT
"""The fake API server's kubelet (fake_k8s.py --kubelet PODMAN): runs each
Pod's first container for real with podman, so that exit codes, output and
timing are real, and writes the Pod's status as a kubelet would.

A Pod's life here:
  - Pending, PodScheduled; container waiting ContainerCreating.
  - the image: `podman image exists`, else `podman pull`; a failure is
    waiting ErrImagePull (podman's message), then ImagePullBackOff, and the
    Pod stays Pending until it is deleted, as on a real node.
  - `podman create` (network host; env; workingDir; command as the
    entrypoint, args as the command; volumes: hostPath as a bind mount,
    persistentVolumeClaim as a directory of DATA/pvc/NS/CLAIM, emptyDir as
    one of DATA/pods/UID, configMap and projected configMap sources as
    files written once into DATA/pods/UID (data, and binaryData decoded to
    its bytes; items honoured; a missing ConfigMap or key is
    CreateContainerConfigError), mounted read-only; subPath honoured), then `podman start --attach`:
    phase Running, state running, Ready.
  - its stdout and stderr go line by line into a CRI log file (TIMESTAMP
    STREAM F|P TEXT), which pods/log serves.
  - the end: exit code from `podman inspect`; terminated reason Completed,
    Error, or OOMKilled when podman says so OR (simulated: no memory cgroup
    here) when the container had a memory limit and died of SIGKILL (137)
    without being deleted; phase Succeeded or Failed.
  - scheduling: spec.nodeName set to the one node, kiln-fake-node (a Pod
    that names another node stays Pending); env valueFrom.secretKeyRef
    resolved from the store's Secrets (CreateContainerConfigError when the
    Secret or key is missing), passed to podman with -e.
  - a delete with a grace period: deletionTimestamp set, `podman stop -t
    GRACE` (SIGTERM, grace, SIGKILL), then the object goes (DELETED). A Pod
    whose container is not running goes at once.
  - the node is a Node object (kiln-fake-node). Deleting it (the node left
    the cluster) makes another join (kiln-fake-node-2, -3...: a cluster
    autoscaler's replacement) and runs the Pod garbage collector's orphan
    sweep: every Pod bound to the gone node gets phase Failed and the
    condition DisruptionTarget (reason DeletionByPodGC, message "PodGC:
    node no longer exists") and is deleted with grace 0, its container
    removed. A Pod created later naming a gone node goes the same way about
    a second after (the real PodGC waits 40 s for a node that may be late).
"""
import base64
import copy
import datetime
import json
import os
import subprocess
import threading
import time

BY_PLURAL = {}  # the API server's resources (fake_k8s.py sets it)


def rfc3339(nano=False):
    t = datetime.datetime.now(datetime.timezone.utc)
    if nano:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Kubelet:
    def __init__(self, store, podman, data_dir, rotate_bytes=0):
        self.store = store
        self.rotate_bytes = rotate_bytes  # --log-rotate-bytes: see LogWriter
        self.podman = podman.split()
        self.data = data_dir
        self.lock = threading.Lock()
        self.pods = {}  # key -> {"cname", "log", "done", "running", "stopping"}
        self.NODE = Kubelet.NODE  # the node now; a deleted one is replaced
        self.gone_nodes = set()

    # -- the store's hooks

    def pod_created(self, key):
        with self.lock:
            self.pods[key] = {"cname": None, "log": None, "done": False, "running": False, "stopping": False}
        threading.Thread(target=self._run, args=(key,), name="kubelet", daemon=True).start()

    def graceful(self, key):
        """Should a delete of KEY wait for the container to stop?"""
        with self.lock:
            p = self.pods.get(key)
            return bool(p and p["running"] and not p["done"])

    def stop(self, key, grace):
        with self.lock:
            p = self.pods.get(key)
            if not p or p["stopping"]:
                return
            p["stopping"] = True
            cname = p["cname"]
        if cname:
            threading.Thread(target=self._podman, args=(["stop", "-t", str(int(grace)), cname],),
                             daemon=True).start()

    def forget(self, key):
        """The object is gone: a container still there goes too."""
        with self.lock:
            p = self.pods.get(key)
            if p:
                p["stopping"] = True
            cname = p and p["cname"]
        if cname:
            threading.Thread(target=self._podman, args=(["rm", "-f", "-t", "0", cname],), daemon=True).start()

    def log_state(self, key):
        """(log file or None, container finished?)"""
        with self.lock:
            p = self.pods.get(key)
            return (p["log"], p["done"]) if p else (None, True)

    # -- helpers

    def _podman(self, args, timeout=300):
        try:
            r = subprocess.run(self.podman + args, capture_output=True, text=True, timeout=timeout)
            return r.returncode, r.stdout, r.stderr
        except (OSError, subprocess.TimeoutExpired) as e:
            return 125, "", str(e)

    def _update(self, key, fn):
        """Change the Pod under the store's lock; a MODIFIED event. False when
        the Pod is gone."""
        st = self.store
        with st.cond:
            e = st.entries.get(key)
            if not e:
                return False
            fn(e["obj"])
            st._commit(key, e, "MODIFIED")
            return True

    def _gone(self, key):
        with self.store.cond:
            return key not in self.store.entries

    def _status(self, key, phase, cstate, ready=False, reason=None):
        def fn(obj):
            ctr = obj["spec"]["containers"][0]
            s = obj.setdefault("status", {})
            s["phase"] = phase
            s.setdefault("startTime", rfc3339())
            s["hostIP"] = s["podIP"] = "127.0.0.1"
            now = rfc3339()
            conds = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                     {"type": "Initialized", "status": "True", "lastTransitionTime": now}]
            for t in ("ContainersReady", "Ready"):
                c = {"type": t, "status": "True" if ready else "False", "lastTransitionTime": now}
                if not ready and reason:
                    c["reason"] = reason
                conds.append(c)
            s["conditions"] = conds
            s["containerStatuses"] = [{"name": ctr["name"], "image": ctr.get("image", ""), "imageID": "",
                                       "ready": ready, "restartCount": 0, "started": "running" in cstate,
                                       "state": cstate}]
        return self._update(key, fn)

    def _remove(self, key):
        st = self.store
        with st.cond:
            gone = st.entries.pop(key, None)
            if gone:
                gone["obj"]["metadata"]["resourceVersion"] = st._bump()
                st._emit("DELETED", key, gone["obj"])

    def _mounts(self, obj, ctr=None):
        spec = obj["spec"]
        ns, uid = obj["metadata"]["namespace"], obj["metadata"]["uid"]
        vols = {v.get("name"): v for v in spec.get("volumes") or []}
        out = []
        for m in (ctr or spec["containers"][0]).get("volumeMounts") or []:
            v = vols.get(m.get("name")) or {}
            kind = "dir"
            if "hostPath" in v:
                src = v["hostPath"]["path"]
                t = v["hostPath"].get("type", "")
                if t == "DirectoryOrCreate":
                    os.makedirs(src, exist_ok=True)
                elif t == "FileOrCreate" and not os.path.exists(src):
                    open(src, "a").close()
                kind = "file" if os.path.isfile(src) else "dir"
            elif "persistentVolumeClaim" in v:
                src = os.path.join(self.data, "pvc", ns, v["persistentVolumeClaim"]["claimName"])
            elif "emptyDir" in v:
                src = os.path.join(self.data, "pods", uid, m["name"])
            elif "configMap" in v or "projected" in v:
                src = self._config_volume(obj, v)
                kind = "ro"
            else:
                raise ValueError(f'volume "{m.get("name")}": only hostPath, persistentVolumeClaim, emptyDir, '
                                 'configMap and projected (configMap sources)')
            if m.get("subPath"):
                src = os.path.join(src, m["subPath"])
            if kind == "dir":
                os.makedirs(src, exist_ok=True)
            ro = ":ro" if kind == "ro" or m.get("readOnly") else ""
            out += ["-v", f"{src}:{m['mountPath']}{ro}"]
        return out

    def _config_volume(self, obj, v):
        """A configMap volume, or a projected one of configMap sources,
        written as files once before the container starts (no updates
        later, no ..data symlinks: plain files): each key of data (text) and
        binaryData (base64-decoded: the bytes) as a file named by the key,
        or by items[].path when items are given. A ConfigMap or key that
        is missing and not optional: ValueError with the kubelet's words
        (CreateContainerConfigError)."""
        ns, uid = obj["metadata"]["namespace"], obj["metadata"]["uid"]
        sources = [s["configMap"] for s in (v.get("projected") or {}).get("sources") or [] if "configMap" in s]
        if "configMap" in v:
            sources = [v["configMap"]]
        d = os.path.join(self.data, "pods", uid, "cfg-" + v["name"])
        os.makedirs(d, exist_ok=True)
        for src in sources:
            name = src.get("name", "")
            with self.store.cond:
                e = self.store.entries.get(("v1", "configmaps", ns, name))
                cm = copy.deepcopy(e["obj"]) if e else None
            if cm is None:
                if src.get("optional"):
                    continue
                raise ValueError(f'configmap "{name}" not found')
            files = {k: val.encode() for k, val in (cm.get("data") or {}).items()}
            files.update({k: base64.b64decode(val) for k, val in (cm.get("binaryData") or {}).items()})
            items = src.get("items")
            if items is None:
                items = [{"key": k, "path": k} for k in sorted(files)]
            for it in items:
                if it.get("key") not in files:
                    if src.get("optional"):
                        continue
                    raise ValueError(f'configmap references non-existent config key: {it.get("key")}')
                path = os.path.join(d, it.get("path") or it["key"])
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(files[it["key"]])
        return d

    # -- the build's objects: scheduling, Secrets

    NODE = "kiln-fake-node"

    def register_node(self):
        """The node's object (the kubelet registers it)."""
        res = self._res("nodes")
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.NODE,
                "labels": {"kubernetes.io/hostname": self.NODE}}}
        try:
            self.store.create(res, "", body, "kubelet")
        except Exception:  # already there
            pass

    @staticmethod
    def _res(plural):
        return BY_PLURAL[("v1", plural)]

    def node_deleted(self, name):
        """The Node object NAME was deleted (store lock held): when it was the
        node, a new one joins and PodGC removes the Pods bound to the old."""
        with self.lock:
            if name != self.NODE:
                return
            self.gone_nodes.add(name)
            self.NODE = f"{Kubelet.NODE}-{len(self.gone_nodes) + 1}"
        self.register_node()
        self._pod_gc(name)

    def _pod_gc(self, node, only=None):
        """PodGC's orphan sweep: Pods bound to NODE (or only the Pod key
        ONLY) marked Failed with DisruptionTarget, then deleted at once."""
        st = self.store
        pods = self._res("pods")
        with st.cond:
            keys = [k for k, e in sorted(st.entries.items()) if k[1] == "pods" and (only is None or k == only)
                    and (e["obj"].get("spec") or {}).get("nodeName") == node]
            for key in keys:
                def mark(obj):
                    s = obj.setdefault("status", {})
                    s["phase"] = "Failed"
                    s.setdefault("conditions", []).append({
                        "type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                        "message": "PodGC: node no longer exists", "lastTransitionTime": rfc3339()})
                self._update(key, mark)
                try:
                    st.delete(pods, key[2], key[3], False, 0)
                except Exception:
                    pass

    def _schedule(self, key, obj):
        """The one node: spec.nodeName set (as the scheduler's binding does)
        unless the Pod names a node; a Pod bound to another node stays
        Pending, unscheduled, as it would for a node that does not exist,
        and one bound to a node that was deleted is removed by PodGC."""
        node = (obj.get("spec") or {}).get("nodeName")
        if node and node in self.gone_nodes:
            def later():
                time.sleep(1.0)
                self._pod_gc(node, key)
            threading.Thread(target=later, name="podgc", daemon=True).start()
            return False
        if node and node != self.NODE:
            return False

        here = self.NODE

        def bind(o):
            o["spec"]["nodeName"] = here
        if not node:
            self._update(key, bind)
            obj["spec"]["nodeName"] = here
        return True

    def _env_value(self, obj, ev):
        """An env entry's value: value, or valueFrom.secretKeyRef read from
        the Secret in the Pod's namespace (LookupError with the kubelet's
        message when the Secret or key is missing and not optional)."""
        ref = (ev.get("valueFrom") or {}).get("secretKeyRef")
        if not ref:
            return ev.get("value", "")
        ns, name, k = obj["metadata"]["namespace"], ref.get("name", ""), ref.get("key", "")
        with self.store.cond:
            e = self.store.entries.get(("v1", "secrets", ns, name))
            data = copy.deepcopy((e["obj"].get("data") or {})) if e else None
        if data is None:
            if ref.get("optional"):
                return ""
            raise LookupError(f'secret "{name}" not found')
        if k not in data:
            if ref.get("optional"):
                return ""
            raise LookupError(f"couldn't find key {k} in Secret {ns}/{name}")
        return base64.b64decode(data[k]).decode("utf-8", "replace")

    # -- one Pod

    def _run(self, key):
        try:
            self._run_pod(key)
        finally:
            with self.lock:
                p = self.pods.get(key)
                if p:
                    p["done"] = True

    def _run_pod(self, key):
        with self.store.cond:
            e = self.store.entries.get(key)
            obj = copy.deepcopy(e["obj"]) if e else None
        if not obj:
            return
        ctr = obj["spec"]["containers"][0]
        image = ctr.get("image", "")
        if not self._schedule(key, obj):
            return
        self._status(key, "Pending", {"waiting": {"reason": "ContainerCreating"}})
        rc, _, err = self._podman(["image", "exists", image])
        if rc != 0:
            rc, _, err = self._podman(["pull", "-q", image])
            if rc != 0:
                msg = (err.strip().splitlines() or ["pull failed"])[-1]
                self._status(key, "Pending", {"waiting": {"reason": "ErrImagePull", "message": msg}})
                time.sleep(1.0)
                self._status(key, "Pending", {"waiting": {
                    "reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}})
                return
        if not self._run_init_containers(key, obj):
            return
        cname = "kiln-fake-k8s-" + obj["metadata"]["uid"]
        args = ["create", "--name", cname, "--network", "host", "--label", "kiln-fake-k8s=1"]
        if ctr.get("workingDir"):
            args += ["-w", ctr["workingDir"]]
        try:
            for ev in ctr.get("env") or []:
                args += ["-e", f"{ev.get('name')}={self._env_value(obj, ev)}"]
        except LookupError as ex:
            self._status(key, "Pending", {"waiting": {"reason": "CreateContainerConfigError", "message": str(ex)}})
            return
        try:
            args += self._mounts(obj)
        except (ValueError, OSError) as ex:
            self._status(key, "Pending", {"waiting": {"reason": "CreateContainerConfigError", "message": str(ex)}})
            return
        if ctr.get("command"):
            args += ["--entrypoint", json.dumps(ctr["command"])]
        args.append(image)
        args += [str(a) for a in ctr.get("args") or []]
        rc, _, err = self._podman(args)
        if rc != 0:
            self._status(key, "Pending", {"waiting": {"reason": "CreateContainerError",
                                                      "message": (err.strip().splitlines() or [""])[-1]}})
            return
        logdir = os.path.join(self.data, "logs", obj["metadata"]["uid"])
        os.makedirs(logdir, exist_ok=True)
        logpath = os.path.join(logdir, ctr["name"] + ".log")
        open(logpath, "w").close()
        with self.lock:
            p = self.pods[key]
            p["cname"], p["log"] = cname, logpath
            stopping = p["stopping"]
        if stopping or self._gone(key):
            self._podman(["rm", "-f", cname])
            return
        proc = subprocess.Popen(self.podman + ["start", "--attach", cname], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        started = rfc3339()
        with self.lock:
            p["running"] = True
        self._status(key, "Running", {"running": {"startedAt": started}}, ready=True)
        writer = LogWriter(logpath, self.rotate_bytes)

        def pump(stream, name):
            for line in iter(stream.readline, b""):
                tag = b"F" if line.endswith(b"\n") else b"P"
                text = line[:-1] if tag == b"F" else line
                writer.write(rfc3339(True).encode() + b" " + name + b" " + tag + b" " + text + b"\n")
        readers = [threading.Thread(target=pump, args=(proc.stdout, b"stdout"), daemon=True),
                   threading.Thread(target=pump, args=(proc.stderr, b"stderr"), daemon=True)]
        for t in readers:
            t.start()
        proc.wait()
        for t in readers:
            t.join()
        writer.close()
        rc, out, _ = self._podman(["inspect", "--format", "{{.State.ExitCode}} {{.State.OOMKilled}}", cname])
        try:
            code_s, oom_s = out.split()
            code, oom = int(code_s), oom_s == "true"
        except ValueError:
            code, oom = proc.returncode, False
        with self.lock:
            stopping = p["stopping"]
        limits = (ctr.get("resources") or {}).get("limits") or {}
        if code == 137 and limits.get("memory") and not stopping:
            oom = True  # simulated: this machine has no memory cgroup for podman
        reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
        term = {"terminated": {"exitCode": code, "reason": reason, "startedAt": started,
                               "finishedAt": rfc3339(), "containerID": "podman://" + cname}}
        with self.lock:
            p["done"] = True
        self._status(key, "Succeeded" if code == 0 else "Failed", term,
                     reason="PodCompleted" if code == 0 else "PodFailed")
        self._podman(["rm", "-f", cname])
        if stopping:
            self._remove(key)


class LogWriter:
    """The container's CRI log file, rotated as the kubelet does
    (containerLogMaxSize, 10 MiB by default) when ROTATE_BYTES > 0: past it,
    the file is renamed PATH.1 (the one before is dropped) and a new PATH
    begun. pods/log serves PATH only: a follow reading the old file goes on
    in the new one (fake_k8s.py's log_rotated), a new request (sinceTime)
    no longer sees what went with the old file, as on a real node."""

    def __init__(self, path, rotate_bytes):
        self.path, self.rotate = path, rotate_bytes
        self.lock = threading.Lock()
        self.f = open(path, "ab")
        self.size = 0
        self.rotations = 0

    def write(self, rec):
        with self.lock:
            self.f.write(rec)
            self.f.flush()
            self.size += len(rec)
            if self.rotate and self.size >= self.rotate:
                self.f.close()
                os.replace(self.path, self.path + ".1")
                self.f = open(self.path, "ab")
                self.size = 0
                self.rotations += 1

    def close(self):
        with self.lock:
            self.f.close()


def _init_pull_and_run(kubelet, key, obj, ictr, index):
    """One init container, to its end: (ok, state). Pulled as the step's
    image is; its output is not kept (kiln reads only the step's log)."""
    image = ictr.get("image", "")
    rc, _, err = kubelet._podman(["image", "exists", image])
    if rc != 0:
        rc, _, err = kubelet._podman(["pull", "-q", image])
        if rc != 0:
            msg = (err.strip().splitlines() or ["pull failed"])[-1]
            return False, {"waiting": {"reason": "ErrImagePull", "message": msg}}
    cname = f"kiln-fake-k8s-{obj['metadata']['uid']}-init{index}"
    args = ["create", "--name", cname, "--network", "host", "--label", "kiln-fake-k8s=1"]
    try:
        args += kubelet._mounts(obj, ictr)
    except (ValueError, OSError) as ex:
        return False, {"waiting": {"reason": "CreateContainerConfigError", "message": str(ex)}}
    if ictr.get("command"):
        args += ["--entrypoint", json.dumps(ictr["command"])]
    args.append(image)
    args += [str(a) for a in ictr.get("args") or []]
    rc, _, err = kubelet._podman(args)
    if rc != 0:
        return False, {"waiting": {"reason": "CreateContainerError",
                                   "message": (err.strip().splitlines() or [""])[-1]}}
    rc, out, err = kubelet._podman(["start", "--attach", cname])
    rc2, code_s, _ = kubelet._podman(["inspect", "--format", "{{.State.ExitCode}}", cname])
    kubelet._podman(["rm", "-f", cname])
    try:
        code = int(code_s.strip())
    except ValueError:
        code = rc
    msg = (err.strip() or out.strip())[-500:]
    term = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}}
    if code and msg:
        term["terminated"]["message"] = msg
    return code == 0, term


def _run_init_containers(self, key, obj):
    """spec.initContainers, in order, before the Pod's container: each must
    end with 0. Status as a kubelet writes it: phase Pending, the step's
    container waiting PodInitializing, initContainerStatuses; an image that
    cannot be pulled leaves the Pod Pending (ErrImagePull, then
    ImagePullBackOff), a failed one makes it Failed (restartPolicy Never).
    True when the Pod's container may start."""
    inits = obj["spec"].get("initContainers") or []
    statuses = [{"name": c.get("name"), "image": c.get("image", ""), "ready": False, "restartCount": 0,
                 "state": {"waiting": {"reason": "PodInitializing"}}} for c in inits]

    def put(phase, creason):
        def fn(o):
            st = o.setdefault("status", {})
            st["phase"] = phase
            st["initContainerStatuses"] = copy.deepcopy(statuses)
            ctr = o["spec"]["containers"][0]
            st["containerStatuses"] = [{"name": ctr["name"], "image": ctr.get("image", ""), "ready": False,
                                        "restartCount": 0, "state": {"waiting": {"reason": creason}}}]
        return self._update(key, fn)
    for i, ictr in enumerate(inits):
        statuses[i]["state"] = {"running": {"startedAt": rfc3339()}}
        if not put("Pending", "PodInitializing"):
            return False
        ok, state = _init_pull_and_run(self, key, obj, ictr, i)
        statuses[i]["state"] = state
        if not ok:
            if "waiting" in state:
                put("Pending", "PodInitializing")
                time.sleep(1.0)
                statuses[i]["state"] = {"waiting": {"reason": "ImagePullBackOff",
                                                    "message": state["waiting"].get("message", "")}}
                put("Pending", "PodInitializing")
            else:
                put("Failed", "PodInitializing")
            return False
        statuses[i]["ready"] = True
        if self._gone(key):
            return False
    if inits:
        put("Pending", "ContainerCreating")
    return True


Kubelet._run_init_containers = _run_init_containers
