"""``physinteract models``: which perception models are found where, and how to place missing ones."""

from __future__ import annotations

import argparse
import json

HELP = "list the optional perception models (VLM, SAM 2), where they were found, and how to place missing ones"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object: key -> {path, file, repo_id, env, purpose, message}")


def run(args: argparse.Namespace) -> int:
    """Print the models' whereabouts; always exits 0 (a missing model is a normal state, not an error)."""
    from physinteract.perception import models

    entries = models.describe()
    if args.json:
        print(json.dumps({e["key"]: {k: v for k, v in e.items() if k != "key"} for e in entries}, indent=2))
        return 0
    for e in entries:
        if e["path"] is None:
            print(f"{e['key']}: missing ({e['repo_id']}, for {e['purpose']})\n  {e['message']}")
        else:
            print(f"{e['key']}: found at {e['file'] or e['path']} ({e['repo_id']}, for {e['purpose']})")
    return 0
