"""`python -m publisher.ops.http_probe URL`: exit 0 when URL answers 200, 1 otherwise.

For container health checks and process managers: the slim image has no curl.
"""

import sys
import urllib.error
import urllib.request

#: Seconds a probe waits for the answer.
TIMEOUT = 5


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m publisher.ops.http_probe http://127.0.0.1:9190/healthz", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(args[0], timeout=TIMEOUT) as response:
            ok = response.status == 200
            body = response.read(2000)
    except urllib.error.HTTPError as e:
        ok, body = False, e.read(2000)
    except OSError as e:
        print(f"{args[0]}: {e}", file=sys.stderr)
        return 1
    print(body.decode(errors="replace").strip())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
