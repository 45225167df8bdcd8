"""Benchmark: reading Dataverse records through `DataverseClient` from the emulator.

`python bench/bench_dynamics.py [--small 50000] [--large 200000]` (with `BENCH_QUICK=1`: 5000 and
20000) prints `name: value` lines:
records/s and peak RSS at N=small and N=large (each read in a fresh subprocess, so peak RSS
is the reader's alone; the emulator runs in this parent process), the RSS growth ratio (goal
<= 1.3: one page in memory at a time), and the same read done with the `dynamics-client`
package (`dynamics.DynamicsClient`) as ratios: ours / theirs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import peak_rss_mb, run_size  # noqa: E402
from sandbox.dynamics import DynamicsEmulator, EmulatedApp  # noqa: E402

APP_ID = "0a1b2c3d-1234-5678-9abc-def012345678"
SECRET = "bench-secret"
SELECT = ["emailaddress1", "firstname", "lastname", "jobtitle", "telephone1", "numberofemployees", "donotbulkemail", "_ownerid_value",
          "modifiedon"]
ENTITY_FOR = {"small": "lead", "large": "contact"}  # one emulator serves both sizes
FORMATTED = 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'


def read_ours(url: str, authority_host: str, ca_path: str, entity: str, select: list[str]) -> int:
    from bot.config import Settings
    from bot.dynamics.auth import sign_in
    from bot.dynamics.client import DataverseClient
    from bot.dynamics.egress import HostAllowlist
    from bot.models import Credentials

    settings = Settings(ENTRA_AUTHORITY_HOST=authority_host, CA_BUNDLE=ca_path)
    credentials = Credentials(username="app@contoso.com", url=url, client_id=APP_ID, client_secret=SECRET)
    provider = sign_in(credentials, settings)
    count = 0
    with DataverseClient(url, provider, ca_bundle=ca_path, host_allowlist=HostAllowlist(["localhost"])) as client:
        for page in client.iter_pages(entity, select, track_changes=False):
            count += len(page.records)
    return count


def read_dynamics_client(url: str, tenant_id: str, ca_path: str, entity: str, select: list[str]) -> int:
    from authlib.integrations.httpx_client import OAuth2Client
    from dynamics import DynamicsClient

    from bot.tls import ssl_context

    client = DynamicsClient(
        api_url=f"{url}/api/data/v9.2",
        token_url=f"{url}/{tenant_id}/oauth2/v2.0/token",
        client_id=APP_ID,
        client_secret=SECRET,
        scope=[f"{url}/.default"],
        cache_token=False,
    )
    # The package has no CA setting; give its OAuth client the emulator's CA, nothing else changes.
    client._oauth_client = OAuth2Client(APP_ID, SECRET, scope=[f"{url}/.default"], verify=ssl_context(ca_path))
    client.table = f"{entity}s"
    client.select = [f"{entity}id", *select]
    client.headers["Prefer"] = f"odata.maxpagesize=5000,{FORMATTED}"  # same annotations as ours
    return len(client.get(pagination_rules={"pages": -1}).data)


def child(args: argparse.Namespace) -> None:
    # Import the reader's libraries before the clock starts: we time sign-in + reading, not imports.
    __import__("bot.dynamics.client" if args.reader == "ours" else "dynamics")
    started = time.perf_counter()
    if args.reader == "ours":
        count = read_ours(args.url, args.authority, args.ca, args.entity, SELECT)
    else:
        count = read_dynamics_client(args.url, args.tenant, args.ca, args.entity, SELECT)
    elapsed = time.perf_counter() - started
    print(json.dumps({"count": count, "seconds": elapsed, "peak_rss_mb": peak_rss_mb()}))


def run_child(em: DynamicsEmulator, reader: str, entity: str) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", reader, "--entity", entity, "--url", em.url,
               "--authority", em.authority_host, "--ca", em.ca_path, "--tenant", em.tenant_id]
    out = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if out.returncode:
        raise SystemExit(f"{reader} reader failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=run_size("BENCH_DYNAMICS_SMALL", 50_000, 5_000))
    parser.add_argument("--large", type=int, default=run_size("BENCH_DYNAMICS_LARGE", 200_000, 20_000))
    parser.add_argument("--child", choices=["ours", "dynamics_client"])
    parser.add_argument("--entity", default="lead")
    parser.add_argument("--url")
    parser.add_argument("--authority")
    parser.add_argument("--ca")
    parser.add_argument("--tenant")
    args = parser.parse_args()
    if args.child:
        args.reader = args.child
        child(args)
        return
    app = EmulatedApp(client_id=APP_ID, secret=SECRET, app_user_email="app@contoso.com")
    with DynamicsEmulator(records={"lead": args.small, "contact": args.large}, apps=[app]) as em:
        results = {}
        for size, entity in ENTITY_FOR.items():
            results[size] = run_child(em, "ours", entity)
            expected = args.small if size == "small" else args.large
            assert results[size]["count"] == expected, results[size]
        theirs = run_child(em, "dynamics_client", ENTITY_FOR["large"])
        assert theirs["count"] == args.large, theirs
    for size, n in (("small", args.small), ("large", args.large)):
        result = results[size]
        print(f"ours_records_per_s_n{n}: {n / result['seconds']:.0f}")
        print(f"ours_peak_rss_mb_n{n}: {result['peak_rss_mb']:.1f}")
    ratio = results["large"]["peak_rss_mb"] / results["small"]["peak_rss_mb"]
    print(f"ours_peak_rss_ratio_n{args.large}_vs_n{args.small}: {ratio:.2f} (goal <= 1.3: {'met' if ratio <= 1.3 else 'missed'})")
    print(f"dynamics_client_records_per_s_n{args.large}: {args.large / theirs['seconds']:.0f}")
    print(f"dynamics_client_peak_rss_mb_n{args.large}: {theirs['peak_rss_mb']:.1f}")
    print(f"throughput_ratio_ours_vs_dynamics_client: {theirs['seconds'] / results['large']['seconds']:.2f}")
    print(f"peak_rss_ratio_ours_vs_dynamics_client: {results['large']['peak_rss_mb'] / theirs['peak_rss_mb']:.2f}")


if __name__ == "__main__":
    main()
