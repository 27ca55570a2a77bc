"""Resident memory of a gunicorn worker as logins pile up: after 1,000 and
after 10,000 full password logins it should differ by less than 10 %.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/iam_mem CACHE_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python benchmarks/memory.py --logins 10000

One worker (its RSS read from /proc), production settings, gunicorn's
max_requests recycling switched off (GUNICORN_MAX_REQUESTS=0) so the same
process is measured throughout. Four clients log in (GET /login/, POST, GET
/) as 50 different users from distinct client IPs, each login a new session.
"""

import argparse
import threading
import time

from harness import Browser, Server, create_users, describe, prepare, production_env, rss_mib

PASSWORD = "memory run passphrase 1"
USERS = [f"mem{n}@shop.example" for n in range(50)]
CHECKPOINTS = (100, 1000, 2000, 5000, 10000, 20000, 50000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logins", type=int, default=10000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    env = production_env(
        IAM_MFA_REQUIRED_GROUPS="",
        IAM_RATE_LOGIN_FAILED="10000/m/ip,10000/m/key",
        GUNICORN_MAX_REQUESTS="0",
    )
    prepare(env)
    create_users(env, [(email, PASSWORD, []) for email in USERS])
    done = 0
    lock = threading.Lock()
    failures: list[str] = []
    readings: list[tuple[int, float, float]] = []

    with Server(env, workers=1) as server:
        (worker,) = server.workers()
        start = time.monotonic()
        readings.append((0, rss_mib(worker), 0.0))
        marks = [m for m in CHECKPOINTS if m <= args.logins]

        def client(offset: int) -> None:
            nonlocal done
            n = offset
            while True:
                with lock:
                    if done >= args.logins:
                        return
                browser = Browser(server.base)
                response = browser.login(USERS[n % len(USERS)], PASSWORD)
                ok = response.status_code == 302 and browser.get("/").status_code == 200
                n += args.clients
                with lock:
                    if not ok:
                        failures.append(f"login {n}: {response.status_code}")
                    done += 1
                    if marks and done >= marks[0]:
                        readings.append((marks.pop(0), rss_mib(worker), time.monotonic() - start))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    print(f"memory run: {args.logins} logins, {describe(env)}, one worker, recycling off")
    print("| logins | worker RSS | elapsed |\n| ---: | ---: | ---: |")
    for logins, rss, elapsed in readings:
        print(f"| {logins:,} | {rss:.1f} MiB | {elapsed:.0f} s |")
    by_count = {logins: rss for logins, rss, _ in readings}
    if 1000 in by_count and args.logins in by_count:
        growth = (by_count[args.logins] - by_count[1000]) / by_count[1000] * 100
        print(f"\nRSS after {args.logins:,} vs after 1,000 logins: {growth:+.1f} %")
    print(f"failed logins: {len(failures)}")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
