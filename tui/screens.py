"""The interface's dialogs: new deployment, override, confirm, rebalance plan, help."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from edgetop.core.advisor import PlannedMove
from edgetop.core.lifecycle import SCENARIOS, LifecycleError, Where, validate_request
from edgetop.core.placement import fmt_ms

MODAL_CSS = """
{name} {{
    align: center middle;
}}
{name} > Vertical {{
    width: 76;
    max-width: 100%;
    height: auto;
    max-height: 100%;
    border: thick $accent;
    background: $surface;
    padding: 0 1;
}}
{name} .title {{
    text-style: bold;
    width: 100%;
}}
{name} .error {{
    color: $error;
}}
{name} Horizontal {{
    height: auto;
}}
{name} Horizontal > * {{
    width: 1fr;
}}
"""


@dataclass(frozen=True)
class NewRequest:
    model: str
    batch: int
    scenario: str
    slo_ms: float
    qps: float | None


def parse_new_request(
    model: str | None, batch: str, scenario: str | None, slo: str, qps: str
) -> NewRequest:
    """The dialog's fields as a request; LifecycleError names the field that is wrong."""
    if not model:
        raise LifecycleError("model: pick one from the catalog")
    try:
        b = int(batch)
    except ValueError:
        raise LifecycleError(f"batch: expected a whole number, got {batch!r}") from None
    try:
        s = float(slo)
    except ValueError:
        raise LifecycleError(f"slo: expected milliseconds, got {slo!r}") from None
    q: float | None = None
    if qps.strip():
        try:
            q = float(qps)
        except ValueError:
            raise LifecycleError(f"qps: expected queries per second, got {qps!r}") from None
        if not q > 0:
            raise LifecycleError(f"qps: must be above 0, got {qps}")
    scenario = scenario or "server"
    validate_request(model, b, s, scenario, "latency")
    return NewRequest(model, b, scenario, s, q)


class NewDeploymentScreen(ModalScreen[NewRequest | None]):
    """Model from the catalog, batch, scenario, SLO (and optional rate)."""

    DEFAULT_CSS = MODAL_CSS.format(name="NewDeploymentScreen")
    BINDINGS: ClassVar[list[BindingType]] = [("escape", "cancel", "Cancel")]

    def __init__(self, models: Sequence[str], default_model: str | None = None) -> None:
        super().__init__()
        self.models = list(models)
        self.default_model = default_model if default_model in self.models else None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("New deployment", classes="title")
            yield Select(
                [(m, m) for m in self.models],
                prompt="model",
                id="model",
                value=self.default_model or Select.NULL,
            )
            with Horizontal():
                yield Input("1", placeholder="batch", id="batch", type="integer")
                yield Select(
                    [(s, s) for s in SCENARIOS], value="server", id="scenario", allow_blank=False
                )
            with Horizontal():
                yield Input(placeholder="SLO p99 ms", id="slo", type="number")
                yield Input(placeholder="qps (optional)", id="qps", type="number")
            yield Label("", id="error", classes="error")
            with Horizontal():
                yield Button("Recommend", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def _submit(self) -> None:
        model = self.query_one("#model", Select).value
        try:
            req = parse_new_request(
                model if isinstance(model, str) else None,
                self.query_one("#batch", Input).value,
                str(self.query_one("#scenario", Select).value),
                self.query_one("#slo", Input).value,
                self.query_one("#qps", Input).value,
            )
        except LifecycleError as exc:
            self.query_one("#error", Label).update(str(exc))
            return
        self.dismiss(req)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._submit()

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class DeviceChoice:
    where: Where
    label: str  # what the recommendation says of it
    warning: str | None  # why placing there is likely a mistake, else None


class OverrideScreen(ModalScreen[DeviceChoice | None]):
    """Pick a device by hand; the scheduler's view of each one is beside it."""

    DEFAULT_CSS = MODAL_CSS.format(name="OverrideScreen")
    BINDINGS: ClassVar[list[BindingType]] = [("escape", "cancel", "Cancel")]

    def __init__(self, title: str, choices: Sequence[DeviceChoice]) -> None:
        super().__init__()
        self.title_text = title
        self.choices = list(choices)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="title")
            options = []
            for c in self.choices:
                prompt = Text(str(c.where).ljust(24), style="bold")
                prompt.append(c.label, style="red" if c.warning else "green")
                options.append(Option(prompt, id=str(c.where)))
            yield OptionList(*options, id="devices")
            yield Label("Enter: deploy there · Esc: cancel", classes="hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    DEFAULT_CSS = MODAL_CSS.format(name="ConfirmScreen")
    BINDINGS: ClassVar[list[BindingType]] = [
        ("y", "answer(True)", "Yes"),
        ("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="title")
            yield Static(Text(self.message, style="yellow"), id="message")
            yield Label("y: go ahead · n/Esc: cancel", classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def move_line(m: PlannedMove) -> Text:
    line = Text(f"{m.deployment_id} ", style="bold")
    line.append(f"{m.source} → {m.target}")
    line.append(f"  p99 {fmt_ms(m.before_p99_ms)} → {fmt_ms(m.after_p99_ms)} ms", style="green")
    line.append(f"  gain {m.gain:,.1f}", style="bold green")
    if m.fixes_violation:
        line.append("  fixes SLO", style="bold cyan")
    return line


class RebalanceScreen(ModalScreen[bool]):
    """The plan: every move with its predicted gain; accept applies them all, reject none."""

    DEFAULT_CSS = MODAL_CSS.format(name="RebalanceScreen")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a,enter", "answer(True)", "Accept", priority=True),
        Binding("r,escape", "answer(False)", "Reject", priority=True),
    ]

    def __init__(self, moves: Sequence[PlannedMove], note: str | None = None) -> None:
        super().__init__()
        self.moves = list(moves)
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Rebalance plan: {len(self.moves)} move(s)", classes="title")
            with VerticalScroll(id="moves"):
                for m in self.moves:
                    yield Static(move_line(m), classes="move")
                    yield Static(Text(f"   {m.reason}", style="dim"), classes="why")
            if self.note:
                yield Label(self.note, classes="hint")
            yield Label("a/Enter: apply every move · r/Esc: reject", classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


@dataclass(frozen=True)
class KeyHelp:
    key: str
    description: str


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = MODAL_CSS.format(name="HelpScreen")
    BINDINGS: ClassVar[list[BindingType]] = [("escape,question_mark,q", "close", "Close")]

    def __init__(self, keys: Sequence[KeyHelp]) -> None:
        super().__init__()
        self.keys = list(keys)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Keys (also in the command palette, ctrl+p)", classes="title")
            text = Text()
            for k in self.keys:
                text.append(f"{k.key:>8}  ", style="bold cyan")
                text.append(f"{k.description}\n")
            text.append("Mouse: click a panel or row to select it; scroll with the wheel.")
            with VerticalScroll():
                yield Static(text, id="keys")

    def action_close(self) -> None:
        self.dismiss(None)
