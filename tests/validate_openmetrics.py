"""Validates OpenMetrics texts with the strict parser of prometheus_client, many per run.

Run with /usr/bin/python3 (Debian's python3-prometheus-client); the python3 on PATH may
lack the module.

    /usr/bin/python3 tests/validate_openmetrics.py FILE...   # one result per file
    /usr/bin/python3 tests/validate_openmetrics.py -        # stdin: a JSON array of base64 texts

Each text is decoded as strict UTF-8 and every family is consumed. The output is one JSON
array with one result per input, in order:

    {"ok": true, "families": [{"name", "type", "help", "unit", "samples": [[name, labels, value]]}]}
    {"ok": false, "error": "..."}

Sample values are written as the parser sees them, in Go's float syntax (`NaN`, `+Inf`, `1.0`).
The exit code is 0 when every text is valid, 1 otherwise, and 2 on a usage error.
"""

import base64
import json
import sys

try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    from prometheus_client.utils import floatToGoString
except ImportError as error:  # pragma: no cover
    print(f"prometheus_client is not importable by {sys.executable}: {error}", file=sys.stderr)
    sys.exit(2)


def validate(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return {"ok": False, "error": f"not valid UTF-8: {error}"}
    try:
        families = []
        for family in text_string_to_metric_families(text):
            families.append({
                "name": family.name,
                "type": family.type,
                "help": family.documentation,
                "unit": family.unit,
                "samples": [[s.name, s.labels, floatToGoString(s.value)] for s in family.samples],
            })
        return {"ok": True, "families": families}
    except Exception as error:  # the parser raises ValueError, and others on odd input
        return {"ok": False, "error": f"{type(error).__name__}: {error}"}


def main(args):
    if args == ["-"]:
        inputs = [base64.b64decode(item) for item in json.load(sys.stdin)]
    elif args:
        inputs = []
        for path in args:
            with open(path, "rb") as file:
                inputs.append(file.read())
    else:
        print(__doc__, file=sys.stderr)
        return 2
    results = [validate(data) for data in inputs]
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")
    return 0 if all(result["ok"] for result in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
