"""Every key of the interface, once: the bindings, the help screen and the command palette
are all built from `KEYS`, so they cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True)
class Key:
    key: str  # Textual's key name(s)
    shown: str  # how the help writes it
    action: str
    title: str  # footer and palette
    description: str
    footer: bool = True


KEYS: tuple[Key, ...] = (
    Key("n", "n", "new_deployment", "New", "new deployment: model, batch, scenario, SLO"),
    Key("a", "a/Enter", "accept", "Accept", "accept the selected pending recommendation"),
    Key("o", "o", "override", "Override", "pick the device yourself (move, if it runs)"),
    Key("r", "r", "rebalance", "Rebalance", "plan moves with predicted gains; accept/reject"),
    Key("x", "x", "stop", "Stop", "stop the selected deployment (discard a pending one)"),
    Key("A", "A", "toggle_auto", "Auto", "auto-pilot on/off"),
    Key("slash", "/", "filter", "Filter", "filter devices and deployments by substring"),
    Key("s", "s", "sort", "Sort", "sort the deployments by the next column"),
    Key("S", "S", "spike", "Spike", "demo: spike the load on the focused sim host", False),
    Key("T", "T", "throttle", "Throttle", "demo: throttle the focused sim host (hot)", False),
    Key("D", "D", "down", "Down", "demo: take the focused sim host down / up", False),
    Key("tab", "Tab", "focus_next", "Next", "next panel or table (demo keys act on it)", False),
    Key("d", "d", "toggle_dark", "Dark", "dark/light theme", False),
    Key("question_mark", "?", "help", "Help", "this help"),
    Key("q", "q", "quit", "Quit", "quit (workers keep running on their hosts)"),
)


def bindings() -> list[Binding]:
    return [
        Binding(k.key, k.action, k.title, show=k.footer) for k in KEYS if k.action != "focus_next"
    ]


class EdgetopCommands(Provider):
    """The same actions as the keys, in the command palette (ctrl+p)."""

    def _commands(self) -> list[tuple[str, Key]]:
        return [(f"{k.title}: {k.description} ({k.shown})", k) for k in KEYS]

    async def discover(self) -> Hits:
        for text, k in self._commands():
            yield DiscoveryHit(text, partial(self.app.run_action, k.action), help=k.description)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, k in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(text),
                    partial(self.app.run_action, k.action),
                    help=k.description,
                )
