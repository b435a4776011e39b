"""python -m sandbox {build,up,status,down}"""
from __future__ import annotations

import argparse
import sys

from . import build, control, procs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build (or reuse cached) control-plane binaries")
    up = sub.add_parser("up", help="start the sandbox clusters (builds first if needed)")
    up.add_argument("--clusters", type=int, default=1, help="number of independent clusters (default 1)")
    sub.add_parser("status", help="show each cluster")
    sub.add_parser("down", help="stop what `up` started and remove its state")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build.build_all()
        elif args.command == "up":
            if args.clusters < 1:
                parser.error("--clusters must be at least 1")
            control.up(args.clusters)
        elif args.command == "status":
            return control.status()
        else:
            control.down()
    except (build.BuildError, procs.SandboxError, TimeoutError, OSError) as exc:
        print(f"sandbox {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
