"""``airflow dtaas lint|schema|plan``: the ``dtaas`` commands inside Airflow's own CLI.

Registered through the provider's ``cli`` entry, so ``pip install`` is enough. The commands are the
same functions as the ``dtaas`` console script and, like it, touch no database and no network.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from typing import Any

from airflow_provider_dtaas import cli


def get_cli_commands() -> list[Any]:
    from airflow.cli.cli_config import ActionCommand, Arg, GroupCommand

    paths = Arg(("paths",), nargs="*", help="spec files or folders (default: task_specs)")
    output = Arg(("--format",), choices=["text", "json"], default="text", help="output format")
    spec = Arg(("spec",), help="the spec file")
    return [
        GroupCommand(
            name="dtaas",
            help="DTaaS task spec tools (no database access)",
            subcommands=[
                ActionCommand(
                    name="lint",
                    help="validate spec files; exit 1 on any problem",
                    func=_lint,
                    args=(paths, output),
                ),
                ActionCommand(name="schema", help="print the JSON Schema of a spec", func=_schema, args=()),
                ActionCommand(name="plan", help="print the DAG a spec builds", func=_plan, args=(spec,)),
            ],
        )
    ]


def _lint(args: Namespace) -> None:
    sys.exit(cli.lint(args.paths, output_format=args.format, out=sys.stdout))


def _schema(args: Namespace) -> None:
    sys.exit(cli.schema(sys.stdout))


def _plan(args: Namespace) -> None:
    sys.exit(cli.plan(args.spec, sys.stdout))
