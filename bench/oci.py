"""OCI measures: Cargohold against CNCF Distribution, alternating runs, and the machine limits
measured in the same run."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.common import (
    MiB,
    RegistryAuth,
    Results,
    cargohold_token,
    hash_file,
    log,
    pull,
    pull_url,
    push_chunked,
    push_monolithic,
    timed,
)
from bench.load import hey, wrk
from bench.peers import Service
from tests.clients.layout import layer_tar

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONCURRENCY = (1, 8, 32)


@dataclass
class OciSystem:
    name: str
    service: Service
    prefix: str  # repositories live under it: acme/public/... on Cargohold
    auth: tuple[str, str] | None

    @property
    def base(self) -> str:
        return self.service.url

    @property
    def host(self) -> str:
        return self.base.removeprefix("http://")

    @property
    def pid(self) -> int | None:
        return self.service.pid

    def session(self) -> requests.Session:
        s = requests.Session()
        if self.auth:
            # Cross-repository mounts (the catalog's repositories) also need pull on the
            # repository they mount from; clients ask for both scopes in one token.
            s.auth = RegistryAuth(*self.auth, (f"repository:{self.prefix}/tags:pull",))
        return s


def size_label(size: int) -> str:
    mib = size // MiB
    return f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"


def connections(n: int) -> str:
    return f"{n} connection{'' if n == 1 else 's'}"


def _mb_s(size: int, seconds: int) -> float:
    return size / 1e6 / seconds


# ---- machine limits -------------------------------------------------------------------------


def limits(res: Results, reps: int, path: Path, digest: str, nginx: Service | None) -> None:
    size = path.stat().st_size
    what = f"the {size_label(size)} file"
    sha = res.measure("limit_sha256sum", "limit", f"sha256sum of {what}", "MB/s", True)
    sha_ssl = res.measure(
        "limit_sha256_openssl", "limit", f"sha256 of {what}, OpenSSL (Python hashlib)", "MB/s", True
    )
    cp = res.measure("limit_cp", "limit", f"cp of {what}, same disk", "MB/s", True)
    cps = res.measure("limit_cp_fsync", "limit", f"cp + fsync of {what}, same disk", "MB/s", True)
    get = res.measure(
        "limit_loopback_get",
        "limit",
        f"GET of {what} from nginx on loopback (requests, sha256 checked)",
        "MB/s",
        True,
    )
    copy = path.with_name("copy")

    def sha256sum() -> float:
        out = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True)
        assert out.stdout.split()[0] == digest.split(":")[1]
        return 0.0

    def cp_run(fsync: bool) -> float:
        copy.unlink(missing_ok=True)
        start = time.perf_counter()
        subprocess.run(["cp", str(path), str(copy)], check=True)
        if fsync:
            subprocess.run(["sync", str(copy)], check=True)
        seconds = time.perf_counter() - start
        copy.unlink()
        return _mb_s(size, seconds)

    session = requests.Session()
    for _ in range(reps):
        res.run(sha, "machine", None, lambda: _mb_s(size, timed(sha256sum)))
        res.run(sha_ssl, "machine", None, lambda: _mb_s(size, timed(hash_file, path)))
        res.run(cp, "machine", None, lambda: cp_run(False))
        res.run(cps, "machine", None, lambda: cp_run(True))
        if nginx is not None:
            url = f"{nginx.url}/{path.name}"
            res.run(
                get,
                "machine",
                None,
                lambda url=url: _mb_s(size, timed(pull_url, session, url, digest)),
            )


def http_limits(res: Results, reps: int, seconds: int, nginx: Service | None, small: str):
    """Requests per second nginx answers for a small static file: what loopback HTTP on this
    machine can do with the same load generator."""
    if nginx is None:
        return
    for c in CONCURRENCY:
        m = res.measure(
            f"limit_static_rps_c{c}",
            "limit",
            f"nginx static 1 KiB file, {connections(c)} (wrk)",
            "req/s",
            True,
        )
        for _ in range(reps):
            res.run(m, "machine", None, lambda c=c: wrk(f"{nginx.url}/{small}", c, seconds, {}).rps)


# ---- blobs ----------------------------------------------------------------------------------


def blobs(
    res: Results,
    systems: list[OciSystem],
    reps: int,
    files: list[tuple[Path, str]],
    chunk: int,
) -> None:
    """Push (monolithic and chunked) and pull of each file, A B A B per operation. Each run
    pushes into a repository of its own, so no run finds the blob already linked."""
    for path, digest in files:
        size = path.stat().st_size
        label = size_label(size)
        key = f"{size // MiB}mib"
        mono = res.measure(
            f"blob_push_mono_{key}",
            "oci",
            f"push {label} blob, monolithic (POST + PUT)",
            "MB/s",
            True,
            "limit_cp_fsync",
        )
        chunked = res.measure(
            f"blob_push_chunked_{key}",
            "oci",
            f"push {label} blob, {chunk // MiB} MiB chunks (PATCH)",
            "MB/s",
            True,
            "limit_cp_fsync",
        )
        pulled = res.measure(
            f"blob_pull_{key}",
            "oci",
            f"pull {label} blob (sha256 checked)",
            "MB/s",
            True,
            "limit_loopback_get",
        )
        for rep in range(reps):
            for op, m in (("mono", mono), ("pull", pulled), ("chunked", chunked)):
                for sys in systems:
                    res.run(m, sys.name, sys.pid, _blob_op(sys, op, key, rep, path, digest, chunk))


def _blob_op(
    sys: OciSystem, op: str, label: str, rep: int, path: Path, digest: str, chunk: int
) -> Callable[[], float]:
    size = path.stat().st_size
    s = sys.session()
    repo = f"{sys.prefix}/blob-{label}-{rep}"

    def run() -> float:
        if op == "mono":
            seconds = timed(push_monolithic, s, sys.base, repo, path, digest)
        elif op == "pull":
            seconds = timed(pull, s, sys.base, repo, digest)
        else:
            seconds = timed(push_chunked, s, sys.base, f"{repo}-chunked", path, digest, chunk)
        return _mb_s(size, seconds)

    return run


# ---- images with skopeo ---------------------------------------------------------------------


def write_layout(root: Path, layers: int, layer_size: int, seed: str) -> str:
    """An OCI layout of `layers` gzip layers of random bytes (so nothing deduplicates across
    runs); returns the manifest digest."""
    blobs_dir = root / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> tuple[str, int]:
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        (blobs_dir / d.split(":")[1]).write_bytes(data)
        return d, len(data)

    descriptors, diff_ids = [], []
    for i in range(layers):
        raw = layer_tar({f"layer{i}/{seed}.bin": os.urandom(layer_size)})
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        digest, size = put(gzip.compress(raw, compresslevel=1, mtime=0))
        descriptors.append(
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest,
                "size": size,
            }
        )
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    cfg_digest, cfg_size = put(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": cfg_digest,
                "size": cfg_size,
            },
            "layers": descriptors,
        }
    ).encode()
    digest, size = put(manifest)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": MANIFEST_TYPE,
                "digest": digest,
                "size": size,
                "annotations": {"org.opencontainers.image.ref.name": "latest"},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    return digest


def _skopeo(work: Path, *args: str) -> None:
    authfile = work / "skopeo-auth.json"
    if not authfile.exists():
        authfile.write_text("{}")
    # A private blob-info cache per run: skopeo would otherwise remember where it pushed a
    # layer and mount it, or skip it, on the next run.
    env = {**os.environ, "HOME": str(work / "skopeo-home"), "XDG_DATA_HOME": str(work / "xdg")}
    out = subprocess.run(
        ["skopeo", "--tmpdir", str(work), *args[:1], "--authfile", str(authfile), *args[1:]],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    if out.returncode != 0:
        raise RuntimeError(f"skopeo {args[0]}: {out.stderr.strip()[-500:]}")


def images(
    res: Results, systems: list[OciSystem], reps: int, work: Path, layers: int, layer_size: int
) -> None:
    total = layers * layer_size
    label = f"{layers}-layer image ({total // MiB} MiB)"
    pushed = res.measure("image_push", "oci", f"skopeo copy push, {label}", "s", False)
    pulled = res.measure("image_pull", "oci", f"skopeo copy pull, {label}", "s", False)
    for rep in range(reps):
        layout = work / f"layout-{rep}"
        write_layout(layout, layers, layer_size, f"rep{rep}")
        for sys in systems:
            dest = f"docker://{sys.host}/{sys.prefix}/image-{rep}:latest"
            creds = ["--dest-creds", ":".join(sys.auth)] if sys.auth else ["--dest-no-creds"]
            res.run(
                pushed,
                sys.name,
                sys.pid,
                lambda dest=dest, creds=creds, layout=layout: timed(
                    _skopeo,
                    work,
                    "copy",
                    "--quiet",
                    "--dest-tls-verify=false",
                    *creds,
                    f"oci:{layout}:latest",
                    dest,
                ),
            )
        for sys in systems:
            src = f"docker://{sys.host}/{sys.prefix}/image-{rep}:latest"
            out = work / f"pulled-{sys.name}-{rep}"

            def pull_image(src: str = src, out: Path = out) -> float:
                start = time.perf_counter()
                # Anonymous on both: Cargohold's acme/public allows it, as Distribution does.
                _skopeo(
                    work,
                    "copy",
                    "--quiet",
                    "--src-tls-verify=false",
                    "--src-no-creds",
                    src,
                    f"dir:{out}",
                )
                seconds = time.perf_counter() - start
                shutil.rmtree(out, ignore_errors=True)
                return seconds

            res.run(pulled, sys.name, sys.pid, pull_image)
        shutil.rmtree(layout, ignore_errors=True)


# ---- small images, manifests, tags ----------------------------------------------------------


def push_small_image(s: requests.Session, base: str, repo: str, tag: str) -> tuple[bytes, str]:
    """A config and one small layer, then the manifest under `tag`; returns the manifest."""
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    layer = b"cargohold bench layer\n" * 64
    descriptors = []
    for blob in (config, layer):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        r = s.post(f"{base}/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, r.text
        loc = r.headers["Location"]
        loc = loc if loc.startswith("http") else base + loc
        r = s.put(f"{loc}{'&' if '?' in loc else '?'}digest={digest}", data=blob)
        assert r.status_code == 201, r.text
        descriptors.append((digest, len(blob)))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": descriptors[0][0],
                "size": descriptors[0][1],
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": descriptors[1][0],
                    "size": descriptors[1][1],
                }
            ],
        }
    ).encode()
    put_manifest(s, base, repo, tag, manifest)
    return manifest, "sha256:" + hashlib.sha256(manifest).hexdigest()


def put_manifest(s: requests.Session, base: str, repo: str, tag: str, manifest: bytes) -> None:
    r = s.put(
        f"{base}/v2/{repo}/manifests/{tag}",
        data=manifest,
        headers={"Content-Type": MANIFEST_TYPE},
    )
    assert r.status_code == 201, f"{r.status_code} {r.text[:300]}"


def manifests(res: Results, systems: list[OciSystem], reps: int, seconds: int) -> None:
    """GET and HEAD of one manifest by tag, anonymous on both (acme/public on Cargohold); then
    again with a bearer token on Cargohold, as registry clients send one (fetched for alice
    with pull on the repository), against Distribution's anonymous figure (it has no auth)."""
    urls: dict[str, str] = {}
    for sys in systems:
        if sys.name in res.failures:
            continue
        repo = f"{sys.prefix}/manifest"
        try:
            push_small_image(sys.session(), sys.base, repo, "latest")
            url = f"{sys.base}/v2/{repo}/manifests/latest"
            r = requests.get(url, headers={"Accept": MANIFEST_TYPE})
            assert r.status_code == 200, f"anonymous GET answered {r.status_code}"
            urls[sys.name] = url
        except Exception as exc:  # noqa: BLE001
            log(f"  manifest setup {sys.name}: FAILED {exc}")
            res.failures.setdefault(f"{sys.name}:manifests", str(exc))
    for bearer in (False, True):
        for c in CONCURRENCY:
            for method in ("GET", "HEAD"):
                _manifest_load(res, systems, urls, reps, seconds, method, c, bearer)


def _bearer_headers(sys: OciSystem, url: str) -> dict[str, str]:
    headers = {"Accept": MANIFEST_TYPE}
    if sys.auth:
        repo = url.split("/v2/", 1)[1].rsplit("/manifests/", 1)[0]
        token = cargohold_token(sys.base, sys.auth, [f"repository:{repo}:pull"])
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _manifest_load(
    res: Results,
    systems: list[OciSystem],
    urls: dict[str, str],
    reps: int,
    seconds: int,
    method: str,
    c: int,
    bearer: bool,
) -> None:
    tool = "wrk" if method == "GET" else "hey"
    limit = f"limit_static_rps_c{c}" if method == "GET" else None
    key = f"manifest_{method.lower()}{'_bearer' if bearer else ''}"
    what = f"manifest {method}{' with a bearer token' if bearer else ''}"
    rps = res.measure(
        f"{key}_rps_c{c}", "oci", f"{what}, {connections(c)} ({tool})", "req/s", True, limit
    )
    p50, p99 = (
        res.measure(f"{key}_{p}_c{c}", "oci", f"{what} {p} latency, {connections(c)}", "ms", False)
        for p in ("p50", "p99")
    )
    for _ in range(reps):
        for sys in systems:
            if sys.name not in urls:
                rps.errors.setdefault(sys.name, "manifest setup failed")
                continue
            url = urls[sys.name]
            # A token fetched for each run: runs outlast a token's lifetime.
            headers = _bearer_headers(sys, url) if bearer else {"Accept": MANIFEST_TYPE}
            found: dict[str, float] = {}

            def run(url: str = url, headers=headers, found=found) -> float:
                if method == "GET":
                    load = wrk(url, c, seconds, headers)
                else:
                    load = hey(url, c, seconds, headers, "HEAD")
                if load.bad:
                    raise RuntimeError(f"{load.bad} failed requests of {load.requests}")
                found.update(p50=load.p50_ms, p99=load.p99_ms)
                return load.rps

            if res.run(rps, sys.name, sys.pid, run) is not None:
                p50.add(sys.name, found["p50"])
                p99.add(sys.name, found["p99"])


def _list_all(s: requests.Session, base: str, path: str, key: str) -> int:
    """Follow `Link: rel="next"` to the end, as a client listing everything does."""
    url, count = f"{base}{path}", 0
    while url:
        r = s.get(url)
        assert r.status_code == 200, f"{r.status_code} {r.text[:200]}"
        count += len(r.json().get(key) or [])
        nxt = r.links.get("next", {}).get("url")
        url = (nxt if nxt.startswith("http") else base + nxt) if nxt else ""
    return count


def _populate(
    res: Results, sys: OciSystem, tags: int, repos: int, create_tags, create_repos
) -> bool:
    s = sys.session()
    s.mount("http://", requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=16))
    repo = f"{sys.prefix}/tags"
    try:
        manifest, _ = push_small_image(s, sys.base, repo, "seed")
    except Exception as exc:  # noqa: BLE001
        res.failures.setdefault(f"{sys.name}:tags", str(exc))
        return False
    parsed = json.loads(manifest)
    blob_digests = [parsed["config"]["digest"]] + [d["digest"] for d in parsed["layers"]]

    def make_tags() -> float:
        start = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda i: put_manifest(s, sys.base, repo, f"t{i:05d}", manifest), range(tags)
                )
            )
        return tags / (time.perf_counter() - start)

    def one_repo(i: int) -> None:
        target = f"{sys.prefix}/catalog/r{i:04d}"
        for digest in blob_digests:
            r = s.post(f"{sys.base}/v2/{target}/blobs/uploads/?mount={digest}&from={repo}")
            assert r.status_code == 201, f"mount: {r.status_code} {r.text[:200]}"
        put_manifest(s, sys.base, target, "latest", manifest)

    def make_repos() -> float:
        start = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(one_repo, range(repos)))
        return repos / (time.perf_counter() - start)

    if res.run(create_tags, sys.name, sys.pid, make_tags) is None:
        return False
    return res.run(create_repos, sys.name, sys.pid, make_repos) is not None


def tags_and_catalog(
    res: Results, systems: list[OciSystem], reps: int, tags: int, repos: int
) -> None:
    """`tags` tags on one repository (PUTs of one manifest under many tags, 16 at a time) and
    `repos` more repositories for the catalog (blobs mounted across, then the manifest)."""
    create_tags = res.measure(
        "tag_put_rate", "oci", "manifest PUT under a new tag, 16 clients", "PUT/s", True
    )
    create_repos = res.measure(
        "repo_create_rate",
        "oci",
        "new repository: 2 cross-repo mounts + manifest PUT, 16 clients",
        "repos/s",
        True,
    )
    tag_list = res.measure(
        "tags_list", "oci", f"tags list of a repository with {tags:,} tags", "ms", False
    )
    catalog = res.measure(
        "catalog", "oci", f"catalog of {repos:,}+ repositories (all pages)", "ms", False
    )
    ready = [
        sys
        for sys in systems
        if sys.name not in res.failures
        and _populate(res, sys, tags, repos, create_tags, create_repos)
    ]
    counts: dict[str, dict[str, int]] = {}
    for _ in range(reps):
        for sys in ready:
            s = sys.session()
            found = counts.setdefault(sys.name, {})

            def list_tags(s: requests.Session = s, sys: OciSystem = sys, found=found) -> float:
                start = time.perf_counter()
                found["tags"] = _list_all(s, sys.base, f"/v2/{sys.prefix}/tags/tags/list", "tags")
                return (time.perf_counter() - start) * 1e3

            def list_catalog(s: requests.Session = s, sys: OciSystem = sys, found=found) -> float:
                start = time.perf_counter()
                found["repositories"] = _list_all(s, sys.base, "/v2/_catalog", "repositories")
                return (time.perf_counter() - start) * 1e3

            res.run(tag_list, sys.name, sys.pid, list_tags)
            res.run(catalog, sys.name, sys.pid, list_catalog)
    tag_list.notes["counts"] = counts
    catalog.notes["counts"] = counts
