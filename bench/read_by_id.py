"""Read-by-id throughput over real HTTP: authenticated + audited FHIR reads vs the unauthenticated path.

Starts the bench server (`bench/_server.py`: `socle.app.create_app(settings, store)` as `socle serve`
builds it, plus bench-only routes; uvicorn, one worker) in a subprocess on 127.0.0.1 over a
populated bench store, mints an operator bearer token in this process against the same database
(`AuthProvider.mint_operator_token("system/*.*")`, as `socle token` does), and drives the server
from a second process on loopback: `wrk` (Debian package) with a Lua script rotating over 10,000
random resource ids (Patients and their clinical resources, no AuditEvents) and sending
`Authorization: Bearer <token>`, or, when wrk is missing, Python processes running httpx clients.
Each run is bounded (`--duration`, default 10 s).

Measured against the same server process and store, in the same run:
- **plain**: `GET /bench-plain/{type}/{id}` — one read-only session and `session.read()`; no token
  check, no policy, no audit (the unauthenticated path of the issue);
- **auth+audit**: `GET /fhir/{type}/{id}` with the bearer token — token verification, scopes and
  policy, the read, and its AuditEvent committed by the group-commit writer before the response;
- the **ratio auth+audit / plain** (issue target ≥ 0.6). Plain and auth+audit alternate over
  `--rounds` rounds so machine noise falls on both; the ratio is total over total.
Also printed: `GET /bench-noaudit/...` (token + policy + read, no trace), and the trivial routes
`GET /` (static) and `GET /fhir/metadata` for scale.

When the ratio is under 0.6 (or with `--profile`), a second server is started with `--instrument`
and the authenticated path is run again while `py-spy record --gil` samples the server (py-spy from
`--py-spy`, default `/tmp/pyspy/bin/py-spy`, else PATH): printed are where the GIL-holding time goes
(token verification, policy, trace, audit writer, HTTP stack) and the audit writer's batch sizes
and commit latency.

    .venv/bin/python -m bench.read_by_id --backend both --resources 40000
    .venv/bin/python -m bench.read_by_id --backend postgres --store search --resources 1000000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from sqlalchemy import create_engine, text

from bench._common import (
    ADMIN_URL,
    BenchDb,
    backends,
    header,
    percentile,
    process_rss_mb,
    with_pg_options,
)
from bench._populate import people_for, populated
from socle.store.engine import normalize_url

TARGET_RATIO = 0.6
DEFAULT_PY_SPY = "/tmp/pyspy/bin/py-spy"
PY_SPY_RATE = 200  # samples per second


@dataclass
class Result:
    name: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    sessions: int | None = None  # PostgreSQL connections opened during the run (pool churn)

    def line(self, baseline: Result | None = None, label: str = "ratio") -> str:
        ratio = f"  {label} {self.requests_per_s / baseline.requests_per_s:5.3f}" if baseline else ""
        opened = f"  new PG conns {self.sessions}" if self.sessions is not None else ""
        return (
            f"   {self.name:36s} {self.requests_per_s:8.0f} req/s  p50 {self.p50_ms:7.2f} ms  "
            f"p99 {self.p99_ms:8.2f} ms  errors {self.errors}{ratio}{opened}"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    db: BenchDb, port: int, args: argparse.Namespace, *, instrument: bool = False
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "bench._server", "--database-url", db.url, "--port", str(port)]
    if instrument:
        command.append("--instrument")
    if args.what_if_pool:
        command += ["--what-if-pool", str(args.what_if_pool)]
    if args.switch_interval:
        command += ["--switch-interval", str(args.switch_interval)]
    if args.what_if_batched_chain:
        command.append("--what-if-batched-chain")
    cwd = Path(__file__).resolve().parent.parent
    env = {**os.environ, "SOCLE_DATABASE_URL": db.url}
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("bench server did not answer within 120 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def mint_token(db: BenchDb, port: int) -> str:
    """An operator token (system/*.*) for the server on `port`: same database, keys and KEK file."""
    from socle.auth.provider import AuthProvider
    from socle.auth.settings import AuthSettings

    engine = db.engine()
    try:
        provider = AuthProvider(engine, AuthSettings(base_url=f"http://127.0.0.1:{port}"))
        return provider.mint_operator_token("system/*.*").token
    finally:
        engine.dispose()


def pg_sessions(db: BenchDb) -> int | None:
    """Connections ever opened to the bench database (PostgreSQL ≥ 14), to spot pool churn."""
    if db.backend != "postgres":
        return None
    engine = create_engine(normalize_url(ADMIN_URL))
    try:
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT sessions FROM pg_stat_database WHERE datname = :n"), {"n": db.name}
            ).scalar()
            return int(found) if found is not None else None
    finally:
        engine.dispose()


def sample_ids(db: BenchDb, count: int) -> list[str]:
    engine = db.engine()
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT res_type, res_id FROM resource WHERE deleted = :f AND res_type <> 'AuditEvent' "
                "ORDER BY random() LIMIT :n"
            ),
            {"f": False, "n": count},
        ).all()
    engine.dispose()
    return [f"{row[0]}/{row[1]}" for row in rows]


# -- wrk -------------------------------------------------------------------------------------------


def _wrk_script(paths: list[str], directory: Path, token: str | None) -> Path:
    script = directory / "rotate.lua"
    table = ",\n".join(f'"{p}"' for p in paths)
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"\n' if token else ""
    script.write_text(
        auth + f"local paths = {{\n{table}\n}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\n'
        "end\n"
    )
    return script


def _ms(value: str) -> float:
    """A wrk duration ("812.00us", "3.41ms", "1.20s", "1.00m") in milliseconds; NaN if unreadable."""
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if found is None:
        return float("nan")
    return float(found.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[found.group(2)]


def run_wrk(
    name: str, port: int, paths: list[str], args: argparse.Namespace, workdir: Path, token: str | None
) -> Result:
    script = _wrk_script(paths, workdir, token)
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--latency",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
    ]
    timeout = args.duration + 60
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=timeout).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # Anchored: the "+/- Stdev" column ("84.50%") must not be read as the 50th percentile.
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    if p50 != p50 or p99 != p99:  # NaN: keep wrk's own report for the record
        print(out)
    errors_match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    errors = int(errors_match.group(1)) if errors_match else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return Result(name, rate, p50, p99, errors)


# -- Python fallback -------------------------------------------------------------------------------


def _client(
    port: int, paths: list[str], duration: float, offset: int, token: str | None, queue: mp.Queue[object]
) -> None:
    times: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        end = time.perf_counter() + duration
        i = offset
        while time.perf_counter() < end:
            started = time.perf_counter()
            if client.get(paths[i % len(paths)]).status_code != 200:
                errors += 1
            times.append(time.perf_counter() - started)
            i += 1
    queue.put((times, errors))


def run_python(name: str, port: int, paths: list[str], args: argparse.Namespace, token: str | None) -> Result:
    context = mp.get_context("spawn")
    queue: mp.Queue[object] = context.Queue()
    procs = [
        context.Process(target=_client, args=(port, paths, args.duration, k * 997, token, queue))
        for k in range(args.connections)
    ]
    for proc in procs:
        proc.start()
    times: list[float] = []
    errors = 0
    for _ in procs:
        got, errs = queue.get()  # type: ignore[misc]
        times += got
        errors += errs
    for proc in procs:
        proc.join()
    p50, p99 = percentile(times, 50) * 1e3, percentile(times, 99) * 1e3
    return Result(name, len(times) / args.duration, p50, p99, errors)


# -- profile of the authenticated path ----------------------------------------------------------

# (label, substrings of "function (file:line)" frames); a sample goes to the first label one of whose
# substrings appears in its stack, so the specific labels come first. The audit writer's own thread
# is split apart by `_label`.
PROFILE_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("token: revocation probe (SQL)", ("any_revoked",)),
    ("token: RS256 signature + claims", ("socle/auth/tokens.py",)),
    ("request context / purpose headers", ("bearer_context", "require_request_context")),
    ("policy (scopes, check_resource)", ("socle/auth/policy.py",)),
    ("trace: patients_of queries", ("trace_of",)),
    ("FHIR read: handle (policy checks, the read)", ("socle/fhir/interactions.py",)),
    ("bench-plain read", ("plain (bench/_server.py",)),
    ("HTTP: uvicorn/h11/starlette/fastapi/anyio", ("uvicorn", "h11", "starlette", "fastapi", "anyio")),
)


def _frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rstrip().rpartition(" ")
    return stack.split(";"), int(count)


def _label(joined: str) -> str:
    if "socle/audit/writer.py" in joined and "_run (" in joined:
        if "create_built (" in joined:
            return "audit writer thread: event rows buffered"
        if "commit_prepared (" in joined:
            return "audit writer thread: rows, chain link, commit (commit_prepared)"
        return "audit writer thread: queue, connection, checkpoint"
    if "prepare_event (" in joined:
        return "audit: AuditEvent built + indexed (request thread)"
    for name, keys in PROFILE_CATEGORIES:
        if any(key in joined for key in keys):
            return name
    return "other"


def py_spy_report(raw_file: Path, expected: int, top: int = 12) -> list[str]:
    """Samples by category (inclusive, first match) and the hottest leaf frames."""
    by_category: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw_file.read_text().splitlines():
        if not line.strip():
            continue
        frames, count = _frames(line)
        total += count
        by_category[_label(";".join(frames))] += count
        leaves[_short(frames[-1])] += count
    if not total:
        return ["   py-spy: no samples"]
    lines = [
        f"   py-spy --gil: {total} samples of the thread holding the GIL out of ~{expected} "
        f"(GIL held ~{100 * total / expected:.0f}% of the time), by category:"
    ]
    for name, count in by_category.most_common():
        lines.append(f"     {100 * count / total:5.1f}%  {name}")
    lines.append("   hottest leaf frames:")
    for name, count in leaves.most_common(top):
        lines.append(f"     {100 * count / total:5.1f}%  {name}")
    return lines


def _short(frame: str) -> str:
    return frame.split("site-packages/")[-1].replace("/work/main/", "")


def timings_report(stats: dict[str, list[float]], requests: int) -> list[str]:
    lines = [f"   instrumented server, {requests} authenticated reads:"]
    names = ("authenticate", "revocation_probe", "handle", "trace_of", "audit_prepare", "audit_write_wait")
    for name in (*names, "audit_record_batch", "audit_batch_commit", "audit_batch_cpu"):
        values = stats.get(name) or []
        if values:
            lines.append(
                f"     {name:20s} n={len(values):6d}  p50 {percentile(values, 50) * 1e3:7.2f} ms  "
                f"p95 {percentile(values, 95) * 1e3:7.2f} ms  total {sum(values):6.2f} s"
            )
    sizes = stats.get("audit_batch_size") or []
    if sizes:
        lines.append(
            f"     audit batches        n={len(sizes):6d}  size mean {sum(sizes) / len(sizes):5.1f}  "
            f"p50 {percentile(sizes, 50):4.0f}  max {max(sizes):4.0f}  "
            f"({sum(sizes) / max(1, len(sizes)):.1f} traces per commit)"
        )
    return lines


def find_py_spy(path: str) -> str | None:
    if Path(path).is_file():
        return path
    return shutil.which("py-spy")


def profile_auth(db: BenchDb, paths: list[str], args: argparse.Namespace, use_wrk: bool) -> list[str]:
    """The authenticated path again, on an instrumented server sampled by py-spy."""
    port = free_port()
    server = start_server(db, port, args, instrument=True)
    lines = ["   -- profile of the authenticated path (instrumented server; not the throughput run)"]
    try:
        token = mint_token(db, port)
        fhir_paths = [f"/fhir/{p}" for p in paths]
        with tempfile.TemporaryDirectory(prefix="socle-bench-") as tmp:
            workdir = Path(tmp)
            measure = _measurer(port, args, use_wrk, workdir, db)
            measure("warm-up", fhir_paths[:500], token)
            httpx.get(f"http://127.0.0.1:{port}/bench-stats")  # reset
            py_spy = find_py_spy(args.py_spy)
            sampler = None
            raw = workdir / "pyspy.txt"
            if py_spy:
                sampler = subprocess.Popen(
                    [
                        py_spy,
                        "record",
                        "--pid",
                        str(server.pid),
                        "--duration",
                        str(args.duration),
                        "--rate",
                        str(PY_SPY_RATE),
                        "--gil",
                        "--format",
                        "raw",
                        "--output",
                        str(raw),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            result = measure("GET /fhir/{type}/{id} (profiled)", fhir_paths, token)
            stats = orjson.loads(httpx.get(f"http://127.0.0.1:{port}/bench-stats").content)
            lines.append(result.line())
            lines += timings_report(stats, int(result.requests_per_s * args.duration))
            if sampler is not None:
                _, err = sampler.communicate(timeout=args.duration + 60)
                if raw.exists():
                    lines += py_spy_report(raw, PY_SPY_RATE * args.duration)
                    if args.keep_profile:
                        shutil.copy(raw, args.keep_profile)
                        lines.append(f"   raw py-spy samples kept in {args.keep_profile}")
                else:
                    lines.append(f"   py-spy failed: {err.decode(errors='replace')[-500:]}")
            else:
                lines.append(f"   py-spy not found ({args.py_spy}, PATH): pip install py-spy")
    finally:
        stop_server(server)
    return lines


def _measurer(
    port: int, args: argparse.Namespace, use_wrk: bool, workdir: Path, db: BenchDb
) -> Callable[..., Result]:
    def measure(name: str, paths: list[str], token: str | None = None) -> Result:
        before = pg_sessions(db)
        if use_wrk:
            result = run_wrk(name, port, paths, args, workdir, token)
        else:
            result = run_python(name, port, paths, args, token)
        if before is not None:
            time.sleep(1.0)  # backends report their statistics within ~0.5 s
            after = pg_sessions(db)
            result.sessions = None if after is None else after - before
        return result

    return measure


def run(db: BenchDb, args: argparse.Namespace, use_wrk: bool) -> list[str]:
    ids = sample_ids(db, args.ids)
    port = free_port()
    server = start_server(db, port, args)
    generator = "wrk" if use_wrk else "httpx"
    what_if = ""
    if args.what_if_pool:
        what_if += f"; WHAT-IF server pools {args.what_if_pool}+{args.what_if_pool}"
    if args.switch_interval:
        what_if += f"; WHAT-IF switch interval {args.switch_interval} s"
    if args.what_if_batched_chain:
        what_if += "; WHAT-IF audit chain linked per batch"
    lines = [
        f"-- {db.backend}: {db.name}, {len(ids)} rotating ids, load generator {generator} "
        f"({args.connections} connections), {args.duration} s per run{what_if}"
    ]
    try:
        token = mint_token(db, port)
        check = httpx.get(
            f"http://127.0.0.1:{port}/fhir/{ids[0]}", headers={"Authorization": f"Bearer {token}"}
        )
        if check.status_code != 200:
            raise SystemExit(f"authenticated read answered {check.status_code}: {check.text[:500]}")
        no_token = httpx.get(f"http://127.0.0.1:{port}/fhir/{ids[0]}").status_code
        lines.append(f"   GET /fhir/{ids[0]} without a token answers {no_token}; with the token 200")
        rss_start = process_rss_mb(server.pid)
        plain_paths = [f"/bench-plain/{i}" for i in ids]
        fhir_paths = [f"/fhir/{i}" for i in ids]
        noaudit_paths = [f"/bench-noaudit/{i}" for i in ids]
        with tempfile.TemporaryDirectory(prefix="socle-bench-") as tmp:
            measure = _measurer(port, args, use_wrk, Path(tmp), db)
            measure("warm-up", plain_paths)
            measure("warm-up", fhir_paths, token)
            static = measure("BASELINE GET / (static)", ["/"])
            metadata = measure("BASELINE GET /fhir/metadata", ["/fhir/metadata"])
            plains: list[Result] = []
            auths: list[Result] = []
            for round_ in range(1, args.rounds + 1):
                plains.append(measure(f"plain /bench-plain (round {round_})", plain_paths))
                auths.append(measure(f"auth+audit /fhir (round {round_})", fhir_paths, token))
            noaudit = measure("token+policy, no audit /bench-noaudit", noaudit_paths, token)
        rss_end = process_rss_mb(server.pid)
    finally:
        stop_server(server)
    plain_rate = sum(r.requests_per_s for r in plains) / len(plains)
    auth_rate = sum(r.requests_per_s for r in auths) / len(auths)
    ratio = auth_rate / plain_rate
    lines.append(static.line())
    lines.append(metadata.line(static, "vs static"))
    for plain, auth in zip(plains, auths, strict=True):
        lines.append(plain.line(static, "vs static"))
        lines.append(auth.line(plain, "vs plain"))
    lines.append(noaudit.line(plains[-1], "vs plain"))
    verdict = "MET" if ratio >= TARGET_RATIO else "MISSED"
    lines.append(
        f"   READ RATIO auth+audit / plain = {auth_rate:.0f} / {plain_rate:.0f} req/s = {ratio:.3f} "
        f"(target ≥ {TARGET_RATIO}: {verdict})"
    )
    lines.append(f"   server RSS {rss_start:.0f} MiB before, {rss_end:.0f} MiB after the runs")
    for line in lines:
        print(line, flush=True)
    if (ratio < TARGET_RATIO or args.profile) and not args.no_profile:
        profile = profile_auth(db, ids, args, use_wrk)
        for line in profile:
            print(line, flush=True)
        lines += profile
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--store", default="read", help="bench store name (socle_bench_<store>)")
    parser.add_argument("--resources", type=int, default=40_000, help="store size (loaded once, reused)")
    parser.add_argument("--ids", type=int, default=10_000, help="distinct ids the reads rotate over")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=2, help="plain/auth alternations")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--pg-options", default="", help="what-if: libpq options for the server's store")
    parser.add_argument("--python-client", action="store_true", help="use httpx even if wrk is present")
    parser.add_argument("--profile", action="store_true", help="profile the auth path even if on target")
    parser.add_argument("--no-profile", action="store_true", help="never profile (what-if runs)")
    parser.add_argument("--py-spy", default=DEFAULT_PY_SPY, help="py-spy executable")
    parser.add_argument("--keep-profile", default="", help="copy the raw py-spy samples to this file")
    parser.add_argument(
        "--what-if-pool", type=int, default=0, help="what-if: server PG pools of N (+N overflow)"
    )
    parser.add_argument("--switch-interval", type=float, default=0.0, help="what-if: sys.setswitchinterval")
    parser.add_argument(
        "--what-if-batched-chain", action="store_true", help="what-if: one chain lock/select/insert per batch"
    )
    parser.add_argument("--workers", type=int, default=1, help="loader processes if the store is loaded")
    args = parser.parse_args()
    use_wrk = shutil.which("wrk") is not None and not args.python_client
    if not use_wrk and not args.python_client:
        print("   wrk not found (apt-get install -y wrk): using Python httpx client processes")
        args.connections = min(args.connections, 4)
    header("read by id over HTTP: auth+audit vs the unauthenticated path", "bench.read_by_id")
    summary: list[str] = []
    for backend in backends(args.backend):
        name = args.store if backend == "postgres" else f"{args.store}_{args.resources}"
        loaded = populated(backend, name, people_for(args.resources), workers=args.workers)
        summary += run(with_pg_options(loaded, args.pg_options), args, use_wrk)
    if args.backend == "both":
        print("== summary")
        for line in summary:
            print(line)


if __name__ == "__main__":
    main()
