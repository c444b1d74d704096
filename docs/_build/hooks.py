"""MkDocs hooks (mkdocs.yml `hooks:`): what the pages show that is generated from the code at
build time, so it cannot drift from it, and a check that the site stays offline.

- ``<!-- generate: NAME -->`` in a page is replaced by the output of ``GENERATORS[NAME]``.
- ``img/schedulers/*.png``: one plot per scheduler family, drawn from our own schedulers
  (added to the build as generated files; nothing is committed).
- After the build, every page, style sheet and script is checked for resources that would be
  fetched from another host (fonts, scripts, CDNs); the build fails if it finds one.
"""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^<!-- generate: ([\w-]+) -->[ \t]*$", re.M)  # on a line of its own

# --------------------------------------------------------------------------- scheduler plots

STEPS = 100
BASE_LR = 0.1
# Each family with the settings its plot uses (by_epoch=False: one step per point).
SCHEDULERS = {
    "ConstantLR": [dict(type="ConstantLR", factor=0.25, end=40)],
    "LinearLR": [dict(type="LinearLR", start_factor=0.1, end=40)],
    "StepLR": [dict(type="StepLR", step_size=25, gamma=0.5)],
    "MultiStepLR": [dict(type="MultiStepLR", milestones=[30, 60, 80], gamma=0.3)],
    "ExponentialLR": [dict(type="ExponentialLR", gamma=0.97)],
    "PolyLR": [dict(type="PolyLR", power=2.0, eta_min=1e-3, end=100)],
    "CosineAnnealingLR": [dict(type="CosineAnnealingLR", eta_min=1e-3, end=100)],
    "CosineRestartLR": [dict(type="CosineRestartLR", periods=[30, 70], restart_weights=[1.0, 0.5], eta_min=1e-3)],
    "OneCycleLR": [dict(type="OneCycleLR", eta_max=0.1, total_steps=100)],
    "LinearLR + CosineAnnealingLR": [
        dict(type="LinearLR", start_factor=0.01, end=10),
        dict(type="CosineAnnealingLR", eta_min=1e-3, begin=10, end=100),
    ],
}


def scheduler_curve(configs: list[dict]) -> list[float]:
    """The lr of one parameter under ``configs`` (stepped together) for STEPS steps."""
    import torch

    from minirunner.registry import PARAM_SCHEDULERS

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=BASE_LR)
    schedulers = [PARAM_SCHEDULERS.build(dict(cfg, optimizer=optimizer, by_epoch=False)) for cfg in configs]
    values = []
    for _ in range(STEPS):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        for scheduler in schedulers:
            scheduler.step()
    return values


def plot_file_name(family: str) -> str:
    return "img/schedulers/" + re.sub(r"\W+", "_", family).strip("_") + ".png"


def scheduler_plot(family: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(5.0, 2.4), dpi=100)
    axes.plot(scheduler_curve(SCHEDULERS[family]), color="#3f51b5")
    axes.set_title(family, fontsize=10)
    axes.set_xlabel("step")
    axes.set_ylabel("lr")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def scheduler_plots_markdown() -> str:
    sections = []
    for family, configs in SCHEDULERS.items():
        code = ",\n".join(_dict_text(cfg) for cfg in configs)
        sections.append(
            f"### {family}\n\n```python\nparam_scheduler = [\n{code},\n]\n```\n\n"
            f"![{family}]({plot_file_name(family)})\n"
        )
    return "\n".join(sections)


def _dict_text(cfg: dict) -> str:
    arguments = [f"{key}={value!r}" for key, value in cfg.items()] + ["by_epoch=False"]
    one_line = f"    dict({', '.join(arguments)})"
    if len(one_line) <= 80:
        return one_line
    return "    dict(\n" + "".join(f"        {argument},\n" for argument in arguments) + "    )"


# --------------------------------------------------------------------------- hook tables


def default_hooks_markdown() -> str:
    """The default hooks: name, class, priority and the events each one implements."""
    from minirunner.hooks import PRIORITIES, get_priority
    from minirunner.registry import HOOKS
    from minirunner.runner.default_hooks import DEFAULT_HOOKS

    names = {value: name for name, value in PRIORITIES.items()}
    rows = ["| name in `default_hooks` | class | priority | events it implements |", "|---|---|---|---|"]
    for name, cfg in DEFAULT_HOOKS.items():
        hook = HOOKS.build(dict(cfg))
        value = get_priority(hook.priority)
        events = ", ".join(f"`{event}`" for event in hook.get_triggered_stages())
        rows.append(f"| `{name}` | `{type(hook).__name__}` | {names.get(value, value)} ({value}) | {events} |")
    return "\n".join(rows)


def priorities_markdown() -> str:
    from minirunner.hooks import PRIORITIES

    rows = ["| name | value |", "|---|---|"]
    rows += [f"| `{name}` | {value} |" for name, value in PRIORITIES.items()]
    return "\n".join(rows)


def hook_trace_markdown() -> str:
    """The events of a real run (2 epochs of 2 iterations, validation and a checkpoint after
    each epoch, then a test), in the order the Runner called them."""
    from minirunner.hooks import EVENTS, Hook
    from minirunner.runner import Runner

    trace: list[str] = []

    class Recorder(Hook):
        pass

    def recorder(event):
        def record(self, runner, *args, **kwargs):
            trace.append(event)
        return record

    for event in EVENTS:
        setattr(Recorder, event, recorder(event))

    loader = dict(batch_size=720, sampler=dict(type="DefaultSampler", shuffle=False),
                  dataset=dict(type="DigitsDataset", split="train"))
    val_loader = dict(batch_size=400, sampler=dict(type="DefaultSampler", shuffle=False),
                      dataset=dict(type="DigitsDataset", split="val"))
    with tempfile.TemporaryDirectory() as work_dir:
        runner = Runner(
            model=dict(type="MLPClassifier", in_features=64, hidden_dims=(8,), num_classes=10),
            work_dir=work_dir, train_dataloader=loader, val_dataloader=val_loader, test_dataloader=val_loader,
            train_cfg=dict(by_epoch=True, max_epochs=2, val_interval=1), val_cfg=dict(), test_cfg=dict(),
            val_evaluator=dict(type="Accuracy"), test_evaluator=dict(type="Accuracy"),
            optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
            custom_hooks=[Recorder()], log_level="ERROR",
        )
        runner.train()
        runner.test()
    # Indent by nesting: a before_* event opens a level that its after_* event closes.
    lines, depth = [], 0
    for event in trace:
        leaf = event in ("before_save_checkpoint", "after_load_checkpoint")
        if event.startswith("after_") and not leaf:
            depth -= 1
        lines.append("    " * depth + event)
        if event.startswith("before_") and not leaf:
            depth += 1
    return "```text\n" + "\n".join(lines) + "\n```"


# --------------------------------------------------------------------------- param groups


def param_groups_markdown() -> str:
    """The parameter-group table a run of configs/digits_cnn_amp_accum.py prints."""
    from minirunner.config import Config
    from minirunner.logging.summary import format_param_groups
    from minirunner.optim import build_optim_wrapper
    from minirunner.registry import MODELS

    import minirunner.model  # noqa: F401  (registers the built-in models)

    cfg = Config.fromfile(REPO / "configs" / "digits_cnn_amp_accum.py")
    model = MODELS.build(cfg.model)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    return "```text\n" + format_param_groups(model, optim_wrapper) + "\n```"


GENERATORS = {
    "scheduler-plots": scheduler_plots_markdown,
    "default-hooks": default_hooks_markdown,
    "priorities": priorities_markdown,
    "hook-trace": hook_trace_markdown,
    "param-groups": param_groups_markdown,
}

# --------------------------------------------------------------------------- MkDocs events


# MkDocs is imported inside the events: the offline check below is also tested from the
# default environment, which has no MkDocs.
def on_files(files, config):
    from mkdocs.structure.files import File

    for family in SCHEDULERS:
        files.append(File.generated(config, plot_file_name(family), content=scheduler_plot(family)))
    return files


def on_page_markdown(markdown, page, config, files):
    from mkdocs.exceptions import Abort

    def expand(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise Abort(f"{page.file.src_uri}: unknown generator {name!r} (known: {', '.join(GENERATORS)})")
        return GENERATORS[name]()

    return MARKER.sub(expand, markdown)


# A resource a browser would fetch from another host when it shows a page: a script, style
# sheet, font, image or frame with an absolute (or protocol-relative) URL, a CSS url() or
# @import of one, and the hosts that serve web fonts and libraries.
EXTERNAL_RESOURCE = re.compile(
    r"""<(?:script|link|img|iframe|source|video|audio)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//"""
    r"""|url\(\s*["']?(?:https?:)?//"""
    r"""|@import\s+["'](?:https?:)?//"""
    r"""|fonts\.googleapis|fonts\.gstatic|cdn\.jsdelivr|unpkg\.com|cdnjs\.|googletagmanager""",
    re.I,
)


# <link> tags that only name a page (mkdocs serve adds a canonical one); the browser fetches nothing.
NAMING_LINK = re.compile(r"""<link\b[^>]*\brel\s*=\s*["']?(?:canonical|alternate|prev|next|author|license)\b[^>]*>""", re.I)

# Material's script bundle names two URLs it loads only on demand: a polyfill for browsers
# without ResizeObserver (no current browser) and mermaid, for pages with a mermaid diagram
# (we have none, and external_resources() fails the build if a page gets one).
ON_DEMAND_IN_THEME = ("https://unpkg.com/resize-observer-polyfill", "https://unpkg.com/mermaid@")


def external_resources(site_dir: Path) -> list[str]:
    """Every place in the built site that would fetch something from another host."""
    found = []
    for path in sorted(site_dir.rglob("*")):
        if path.suffix not in (".html", ".css", ".js") or path.name.endswith(".min.js.map"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".js" and path.parent.name == "javascripts":
            for url in ON_DEMAND_IN_THEME:
                text = text.replace(url, "")
        if path.suffix == ".html":
            text = NAMING_LINK.sub("", text)
        if path.suffix == ".html" and 'class="mermaid"' in text:
            found.append(f"{path.relative_to(site_dir)}: a mermaid diagram (Material loads mermaid from unpkg.com)")
        for match in EXTERNAL_RESOURCE.finditer(text):
            start = max(match.start() - 40, 0)
            found.append(f"{path.relative_to(site_dir)}: ...{text[start:match.end() + 40]!s}...")
    return found


def on_post_build(config):
    from mkdocs.exceptions import Abort

    found = external_resources(Path(config["site_dir"]))
    if found:
        raise Abort("the site would fetch resources from other hosts:\n" + "\n".join(found[:20]))
