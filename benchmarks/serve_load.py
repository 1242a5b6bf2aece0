"""Load test of `ferkit serve` on loopback (issue 17): N concurrent clients send a fixed
number of photo requests each; requests/s, p50/p99 latency and errors at 1, 4 and 16
clients, then an overload run against a server with no queue, showing the 503 path.
Traffic goes only to 127.0.0.1, bounded in count and time.

    python benchmarks/serve_load.py [--requests 200] [--clients 1,4,16]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from _common import ROOT, SHARED, write_result

sys.path.insert(0, str(ROOT / "tests"))
PHOTO = SHARED / "media" / "two_people.jpg"


def load(url: str, clients: int, total: int, data: bytes, deadline_s: float = 300) -> dict:
    import httpx
    stop = time.time() + deadline_s

    def client(n: int):
        out = []
        with httpx.Client(timeout=60) as c:
            for _ in range(n):
                if time.time() > stop:
                    break
                t = time.perf_counter()
                r = c.post(url + "/v1/analyze", files={"file": ("p.jpg", data)})
                out.append((r.status_code, time.perf_counter() - t))
        return out

    shares = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as ex:
        res = [x for part in ex.map(client, shares) for x in part]
    wall = time.perf_counter() - t0
    ok = sorted(lat for code, lat in res if code == 200)
    codes: dict[str, int] = {}
    for code, _ in res:
        codes[str(code)] = codes.get(str(code), 0) + 1
    q = statistics.quantiles(ok, n=100) if len(ok) >= 2 else [float("nan")] * 99
    return {"clients": clients, "requests": len(res), "seconds": round(wall, 2),
            "requests_per_s": round(len(ok) / wall, 2),
            "p50_ms": round(1000 * statistics.median(ok), 1) if ok else None,
            "p99_ms": round(1000 * q[98], 1) if ok else None,
            "status_codes": codes, "errors": sum(v for k, v in codes.items() if k != "200")}


def main():
    from serving import running_server
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    data = PHOTO.read_bytes()
    rows = []
    server_args = ["--concurrency", str(args.concurrency), "--threads", str(args.threads),
                   "--max-queue", "64"]
    with running_server(*server_args) as url:
        load(url, 2, 10, data)                         # warm-up: models and sockets
        for n in (int(c) for c in args.clients.split(",")):
            rows.append(load(url, n, args.requests, data))
            print(rows[-1], flush=True)
    with running_server("--concurrency", "1", "--max-queue", "0", "--threads", "1") as url:
        load(url, 1, 3, data)
        overload = load(url, 16, 64, data)
        print("overload", overload, flush=True)
    write_result("serve_load", {
        "setup": {"photo": PHOTO.name, "faces_per_photo": 2, "server": server_args,
                  "overload_server": ["--concurrency", "1", "--max-queue", "0"],
                  "requests_per_level": args.requests, "model": "default"},
        "levels": rows, "overload": overload})


if __name__ == "__main__":
    main()
