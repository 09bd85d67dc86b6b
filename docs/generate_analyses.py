"""Write docs/analyses.md from the analysis registry (``python docs/generate_analyses.py``);
a test checks it is current, so the page says what every surface does."""

from __future__ import annotations

import sys
from pathlib import Path

from microjourney.registry import REGISTRY

HEADER = """# Analyses

Generated from the analysis registry (`microjourney/registry/`) by
`python docs/generate_analyses.py`; `tests/test_registry.py` fails when this page and the
registry disagree. Each analysis is the same on every surface:

- the CLI: `microjourney NAME [ARGS] [--json] [--wide]` (docs/cli.md);
- Python: `ws.analysis("NAME", **params)` returns a `Result` (`.table(name)`, `.warnings`,
  `.meta`, `.to_dict()`);
- HTTP: `GET /v1/analyses/NAME?param=value` with the secret key (docs/collector.md), the
  parameters in the OpenAPI document at `/openapi.json`;
- `--json` and the API give `{"analysis", "meta", "warnings", "tables", "columns"}`:
  `meta` holds the parameters in force, the filters, the engine, `as_of` (the time of
  the last event), `refreshed_at` (when the derived tables read last took in the stored
  data) and `stale_s` (seconds since; up to `server.refresh_every` while served);
  `warnings` are coded (`few-units`, `no-units`...), never errors.

The same label means the same number everywhere; every rate below says what it divides
by. Adding an analysis: docs/architecture.md, "Adding an analysis".
"""


def _params(analysis) -> list[str]:
    lines = ["| parameter | type | default | meaning |", "|---|---|---|---|"]
    for name, field in analysis.params.model_fields.items():
        public = field.alias or name
        kind = str(field.annotation).replace("typing.", "").replace("NoneType", "None").replace(" | ", " or ")
        default = "required" if field.is_required() else (
            "[]" if field.default_factory else f"`{field.default!r}`")
        lines.append(f"| `{public}` | `{kind}` | {default} | {field.description or ''} |")
    return lines


def render() -> str:
    parts = [HEADER]
    for a in REGISTRY:
        parts.append(f"## {a.name}\n\n**{a.title}.** {a.doc}\n")
        parts.append("\n".join(_params(a)) + "\n")
        for view in a.views:
            parts.append(f"Table `{view.table}` ({view.title}):\n")
            rows = ["| column | label | meaning |", "|---|---|---|"]
            for c in view.columns:
                ci = f" With its 95% interval in `{c.ci}`." if c.ci else ""
                rows.append(f"| `{c.name}` | {c.label} | {c.doc}{ci} |")
            parts.append("\n".join(rows) + "\n")
    return "\n".join(parts)


if __name__ == "__main__":
    target = Path(__file__).with_name("analyses.md")
    target.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")
