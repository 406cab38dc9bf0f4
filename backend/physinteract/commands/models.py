"""``physinteract models``: which perception models are found where."""

from __future__ import annotations

import argparse
import json

HELP = "list the optional perception models (VLM, SAM 2), where they were found, and how to place missing ones"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from physinteract.perception import models

    found = models.report()
    if args.json:
        print(json.dumps({k: {"path": v if v != "missing" else None, "repo_id": models.MODELS[k].repo_id} for k, v in found.items()}))
        return 0
    for key, where in found.items():
        if where == "missing":
            print(f"{key}: missing\n  {models.missing_message(key)}")
        else:
            print(f"{key}: {where}")
    return 0
