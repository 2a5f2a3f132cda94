"""The steps of an authenticated, audited read by id, timed one by one in one thread (no HTTP, no load).

`bench/read_by_id.py` measures the ratio over HTTP under load, where the steps compete for the GIL and
for the 2 cores; this bench gives each step's own cost on an idle path, on a populated bench store:

- `plain read`: a read-only session and `session.read()` (what `/bench-plain` does);
- `token verify`: `provider.verifier.verify(token)` (RS256 signature, claims, revocation probe);
- `handle (policy + read)`: a read-only session and `handle(GET Type/id)` for the operator context;
- `handle + trace_of`: the same plus the trace's patients (`socle.fhir.access.trace_of`), i.e. the
  read-only part of `perform()`;
- `audit prepare (request thread)`: `prepare_event` (the AuditEvent built, serialised and indexed,
  as `AuditWriter.write` does in the request's thread before queueing it);
- `audit commit, per trace`: `AuditWriter.commit_batch` on batches of `--batch-size` prepared traces
  (one transaction per batch, as the group-commit writer does), divided by the batch size.

Then the estimate: plain / (verify + handle + trace_of + prepare + audit per trace), the ratio the
HTTP bench would approach if nothing but these steps counted. `--profile` prints a cProfile split
of the audit commits (validation, indexing, SQLAlchemy, driver...). `--what-if-batched-chain` is
accepted for the old command lines and changes nothing: socle now links a batch at once.

    .venv/bin/python -m bench.read_path --backend both --store search --resources 100000
"""

from __future__ import annotations

import argparse
import cProfile
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from bench._common import BenchDb, backends, header, percentile, profile_report
from bench._populate import people_for, populated
from bench.read_by_id import sample_ids
from socle.audit.trail import AccessTrace, PreparedEvent, prepare_event
from socle.auth.context import RequestContext
from socle.fhir.access import trace_of
from socle.fhir.interactions import FhirRequest, classify, handle
from socle.store.repository import FhirStore

BASE = "http://127.0.0.1:8000"


def timed(calls: list[Callable[[], Any]]) -> list[float]:
    times = []
    for call in calls:
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def line(name: str, times: list[float], per: int = 1) -> str:
    p50, p95 = percentile(times, 50) * 1e3 / per, percentile(times, 95) * 1e3 / per
    return f"   {name:30s} n={len(times):5d}  p50 {p50:7.3f} ms  p95 {p95:7.3f} ms"


def run(db: BenchDb, args: argparse.Namespace) -> list[str]:
    from socle.auth.provider import AuthProvider
    from socle.auth.settings import AuthSettings

    ids = [i.split("/", 1) for i in sample_ids(db, args.reads)]
    store = FhirStore(db.engine())
    provider = AuthProvider(store.engine, AuthSettings(base_url=BASE), store=store)
    token = provider.mint_operator_token("system/*.*").token
    ctx = RequestContext.operator("socle-bench")

    def plain(res_type: str, res_id: str) -> None:
        with store.session(readonly=True) as s:
            assert s.read(res_type, res_id).data

    def request(res_type: str, res_id: str) -> FhirRequest:
        return FhirRequest("GET", f"{res_type}/{res_id}", base_url=f"{BASE}/fhir")

    def handled(res_type: str, res_id: str) -> None:
        with store.session(readonly=True) as s:
            assert handle(request(res_type, res_id), s, ctx).status == 200

    traces: list[AccessTrace] = []

    def traced(res_type: str, res_id: str) -> None:
        fhir_request = request(res_type, res_id)
        with store.session(readonly=True) as s:
            response = handle(fhir_request, s, ctx)
            traces.append(trace_of(s, classify("GET", fhir_request.path), response.status, None))

    for step in (plain, handled, traced):  # warm-up: definitions, compiled SQL, pool
        for res_type, res_id in ids[:20]:
            step(res_type, res_id)
    traces.clear()
    lines = [f"-- {db.backend}: {db.name}, {len(ids)} reads, audit batches of {args.batch_size}"]
    plain_t = timed([lambda t=t, i=i: plain(t, i) for t, i in ids])
    verify_t = timed([lambda: provider.verifier.verify(token) for _ in ids])
    handle_t = timed([lambda t=t, i=i: handled(t, i) for t, i in ids])
    traced_t = timed([lambda t=t, i=i: traced(t, i) for t, i in ids])
    prepared: list[PreparedEvent] = []
    prepare_t = timed([lambda t=t: prepared.append(prepare_event(store, ctx, t)) for t in traces])
    writer = store.audit_writer
    batches = [prepared[k : k + args.batch_size] for k in range(0, len(prepared), args.batch_size)]
    batches = [b for b in batches if len(b) == args.batch_size]
    profile = cProfile.Profile() if args.profile else None

    def commit(batch: list[PreparedEvent]) -> None:
        items: list[tuple[PreparedEvent, Future[None]]] = [(event, Future()) for event in batch]
        if profile is not None:
            profile.enable()
        writer.commit_batch(items)
        if profile is not None:
            profile.disable()
        for _, done in items:
            done.result(timeout=0)

    commit_t = timed([lambda b=b: commit(b) for b in batches])
    per_trace = [t / args.batch_size for t in commit_t]
    lines.append(line("plain read", plain_t))
    lines.append(line("token verify", verify_t))
    lines.append(line("handle (policy + read)", handle_t))
    lines.append(line("handle + trace_of", traced_t))
    lines.append(line("audit prepare (request thread)", prepare_t))
    lines.append(line(f"audit commit, batch of {args.batch_size}", commit_t))
    lines.append(line("audit commit, per trace", per_trace))
    total = (
        percentile(verify_t, 50)
        + percentile(traced_t, 50)
        + percentile(prepare_t, 50)
        + percentile(per_trace, 50)
    )
    plain_p50 = percentile(plain_t, 50)
    lines.append(
        f"   sum of p50s for an audited read {total * 1e3:.3f} ms vs plain {plain_p50 * 1e3:.3f} ms"
        f": ratio {plain_p50 / total:.3f} (no HTTP, one thread)"
    )
    for text in lines:
        print(text, flush=True)
    if profile is not None:
        print(f"   cProfile of the {len(batches)} audit batch commits:")
        for text in profile_report(profile, top=12):
            print(text)
    store.engine.dispose()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--store", default="search", help="bench store name (socle_bench_<store>)")
    parser.add_argument("--resources", type=int, default=100_000, help="store size (loaded once, reused)")
    parser.add_argument("--sqlite-resources", type=int, default=100_000, help="SQLite store size")
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=8, help="traces per audit commit")
    parser.add_argument("--profile", action="store_true", help="cProfile the audit commits")
    parser.add_argument("--what-if-batched-chain", action="store_true", help="see bench/_server.py")
    args = parser.parse_args()
    header("read path, step by step (one thread, no HTTP)", "bench.read_path")
    for backend in backends(args.backend):
        size = args.resources if backend == "postgres" else args.sqlite_resources
        name = args.store if backend == "postgres" else f"{args.store}_{size}"
        run(populated(backend, name, people_for(size)), args)


if __name__ == "__main__":
    main()
