"""A sandbox's terminals in the browser: one xterm per terminal, in tabs, following the program's output while the
page is connected and showing what was there (the scrollback) again after a reload."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import background_tasks, events, ui

from agent_ui.components.a11y import named
from services.errors import DomainError
from services.sandbox import SandboxService
from services.sandbox.schemas import TerminalCreate
from services.sandbox.terminals import Terminal

BACKGROUND = "#1e1e1e"
BAR = "#2b2b2b"
# Colours of VS Code's dark terminal: every ANSI colour readable on the background.
THEME = {
    "background": BACKGROUND, "foreground": "#d4d4d4", "cursor": "#e6e6e6", "cursorAccent": BACKGROUND,
    "selectionBackground": "#264f78", "black": "#000000", "red": "#cd3131", "green": "#0dbc79",
    "yellow": "#e5e510", "blue": "#2472c8", "magenta": "#bc3fbc", "cyan": "#11a8cd", "white": "#e5e5e5",
    "brightBlack": "#767676", "brightRed": "#f14c4c", "brightGreen": "#23d18b", "brightYellow": "#f5f543",
    "brightBlue": "#3b8eea", "brightMagenta": "#d670d6", "brightCyan": "#29b8db", "brightWhite": "#ffffff",
}  # fmt: skip
OPTIONS: dict[str, Any] = {
    "cursorBlink": True,
    "fontFamily": "ui-monospace, 'DejaVu Sans Mono', 'Cascadia Mono', Menlo, Consolas, 'Liberation Mono', monospace",
    "fontSize": 13,
    "scrollback": 5000,
    "theme": THEME,
}
# What xterm answers to a program's questions (cursor position, device attributes): during a replay of the
# scrollback these answer questions asked long ago, and are dropped.
TERMINAL_REPORT = re.compile(r"(\x1b\[[0-9;?>]*[Rnc])+")
# The sizes a pseudo-terminal takes (TerminalResize's bounds): a box too small for them is not fitted down further.
ROWS = (2, 500)
COLS = (10, 1000)
# The file list is re-read once a terminal has been quiet this long after output (a command may have made files).
QUIET_S = 1.0
# How long the browser may take to show one piece of output; meanwhile the service coalesces what comes.
WRITE_TIMEOUT_S = 10.0
# The scrollback is in the viewer as soon as it is attached; a new terminal may have none yet.
SCROLLBACK_WAIT_S = 0.05
# Output is written with a callback: the answer comes once xterm has parsed it (NiceGUI's component keeps the
# xterm.js Terminal as `terminal`).
WRITE = """
return new Promise(done => {
  const terminal = getElement(%(id)d)?.terminal;
  if (terminal) terminal.write(%(data)s, () => done(true)); else done(false);
});
"""
# The xterm fits its box now, and whenever the box has changed size (a window resize, the navigation rail opening
# or closing, a phone turned) and kept it for FIT_SETTLE_MS; never while something moves the layout (a transition
# that only changes colours does not). Sizes passed through on the way (the navigation drawer sliding away as the
# window narrows) never reach the program: each resize makes a shell redraw its prompt, and one drawn for a width
# the xterm no longer has mangles the lines above it. One observer per xterm, kept across reconnects.
FIT_SETTLE_MS = 150
FIT_WHEN_SETTLED = """
const host = getHtmlElement(%(id)d);
if (host) {
  const moving = () => document.getAnimations().some(a => a.playState === "running"
    && a.effect?.getTiming().iterations !== Infinity && !/color|opacity|shadow/.test(a.transitionProperty ?? ""));
  const fit = (wait) => {
    clearTimeout(host.fitTimer);
    host.fitTimer = setTimeout(() => moving() ? fit(50) : getElement(%(id)d)?.fit(), wait);
  };
  if (!host.fitObserver) {
    host.fitObserver = new ResizeObserver(() => fit(%(settle)d));
    host.fitObserver.observe(host);
  }
  fit(0);
}
"""


def ended_line(reason: str) -> str:
    """What the xterm shows under a terminal's last output, dim, once its program has ended."""
    return f"\r\n\x1b[2m[process exited: {reason}]\x1b[0m\r\n"


class TerminalView:
    """One terminal in an xterm. Keys go to its program in the order typed; its output (the scrollback first)
    is followed by a task that runs while the page is connected (a disconnect ends it and detaches, a reconnect
    starts afresh from the scrollback); the program's window follows the xterm's size."""

    def __init__(self, terminal: Terminal, title: str, *, on_output: Callable[[], None],
                 on_end: Callable[[TerminalView], None]) -> None:  # fmt: skip
        self.terminal = terminal
        self.id = terminal.id
        self.title = title
        self.ended = False
        self._on_output = on_output
        self._on_end = on_end
        self._following: asyncio.Task[None] | None = None
        self._followed_before = False
        self._live = False  # following, the scrollback replayed and the xterm fitted to its box
        self._replaying = False
        self._early: list[bytes] = []  # typed as the page connected, before the scrollback was replayed
        self._typing = asyncio.Lock()  # each keystroke is sent by a task of its own: the lock keeps them in order
        self.box = ui.element("div").classes("absolute inset-0 py-1 pl-2").mark("terminal-box", f"box-{self.id}")
        with self.box:
            self.xterm = ui.xterm(OPTIONS, on_data=self._typed, on_resize=self._resized)
            self.xterm.classes("w-full h-full").mark("xterm", f"xterm-{self.id}")

    @property
    def following(self) -> bool:
        return self._following is not None and not self._following.done()

    def start(self) -> None:
        """Follow the output (from the scrollback): on connecting, and again on reconnecting."""
        if self.ended or self.following:
            return
        self._following = background_tasks.create(self._follow(), name=f"xterm-{self.id}")

    def stop(self) -> None:
        """Stop following (the client went away or the tab was closed): the task detaches as it ends."""
        self._live = False
        self._early.clear()
        if self._following is not None:
            self._following.cancel()
            self._following = None

    def show(self) -> None:
        """Fit the xterm to its box (unless the scrollback is being replayed) and take the keyboard."""
        self.box.classes(remove="invisible")
        if self.xterm.client.has_socket_connection:
            if self._live:
                self.xterm.fit()
            self.xterm.run_terminal_method("focus")

    def hide(self) -> None:
        """Out of sight but still laid out, so its size stays right and output keeps arriving."""
        self.box.classes(add="invisible")

    def delete(self) -> None:
        self.stop()
        self.box.delete()

    async def _follow(self) -> None:
        """The scrollback is replayed at the size the program last had (its output was made for that size), then
        the xterm is fitted to its box: xterm reflows what it shows and the program hears of the new size."""
        viewer = self.terminal.attach()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # output may split a character
        try:
            if self._followed_before:  # a reconnect: what the xterm shows is replaced by the scrollback
                self.xterm.run_terminal_method("reset")
            self._followed_before = True
            self.xterm.run_terminal_method("resize", self.terminal.cols, self.terminal.rows)
            try:
                data: bytes | None = await asyncio.wait_for(viewer.next(), SCROLLBACK_WAIT_S)
            except TimeoutError:
                data = None  # no scrollback: nothing said yet
            if data:
                self._replaying = True
                try:
                    await self._write(decoder.decode(data))
                finally:
                    self._replaying = False
            self._fit()
            for early in self._early:
                self._send_soon(early)
            self._early.clear()
            if data != b"":
                while data := await viewer.next():
                    await self._write(decoder.decode(data))
                    self._on_output()
            reason = self.terminal.ended_reason or "ended"
            await self._write(decoder.decode(b"", final=True) + ended_line(reason))
        finally:
            self._live = False
            self.terminal.detach(viewer)
        self.ended = True
        self._on_end(self)

    def _fit(self) -> None:
        """Fit to the box, now and whenever it changes size; the program hears of each new size (_resized)."""
        self._live = True
        self.xterm.client.run_javascript(FIT_WHEN_SETTLED % {"id": self.xterm.id, "settle": FIT_SETTLE_MS})

    async def _write(self, text: str) -> None:
        """Awaited until xterm has taken it in, so that output comes no faster than the browser shows it (the
        service coalesces meanwhile) and a resize never overtakes output still being parsed."""
        if text:
            code = WRITE % {"id": self.xterm.id, "data": json.dumps(text)}
            with contextlib.suppress(TimeoutError):
                await self.xterm.client.run_javascript(code, timeout=WRITE_TIMEOUT_S)

    def _typed(self, event: events.XtermDataEventArguments) -> None:
        if self._live:
            self._send_soon(event.data.encode())
        elif not (self._replaying and TERMINAL_REPORT.fullmatch(event.data)):  # typed early: sent after the replay
            self._early.append(event.data.encode())
        # else xterm answering a request in the scrollback (where is the cursor?): the program had its answer then

    def _send_soon(self, data: bytes) -> None:
        background_tasks.create(self._send(data), name=f"xterm-input-{self.id}")

    async def _send(self, data: bytes) -> None:
        async with self._typing:  # tasks start in the order made, and the lock is first come, first served
            with contextlib.suppress(DomainError):  # it ended meanwhile: the output says so
                await self.terminal.write(data)

    async def _resized(self, event: events.XtermResizeEventArguments) -> None:
        if not self._live or self.ended:  # while the scrollback is replayed, the size is the program's, not the box's
            return
        rows, cols = min(max(event.rows, ROWS[0]), ROWS[1]), min(max(event.cols, COLS[0]), COLS[1])
        if (rows, cols) != (self.terminal.rows, self.terminal.cols):
            with contextlib.suppress(DomainError):
                await self.terminal.resize(rows, cols)


class TerminalTabs:
    """The sandbox's open terminals as tabs, with one more opened by "+" (within the sandbox's quota) and each
    closed by its x. The page opens one if the sandbox has none; a reload shows the same terminals again."""

    def __init__(self, sandboxes: SandboxService, user_id: str, sandbox_id: str, *,
                 on_quiet: Callable[[], Awaitable[None]]) -> None:  # fmt: skip
        self._sandboxes = sandboxes
        self._user_id = user_id
        self._sandbox_id = sandbox_id
        self._on_quiet = on_quiet
        self._views: dict[str, TerminalView] = {}
        self._tabs: dict[str, ui.tab] = {}
        self._opened = 0
        self._more_output = asyncio.Event()
        self._waiting: asyncio.Task[None] | None = None
        self._client = ui.context.client
        with ui.card().classes("w-full p-0 gap-0 overflow-hidden").style(f"background: {BACKGROUND}").mark("terminals"):
            with ui.row().classes("items-center w-full no-wrap gap-0 pr-1").style(f"background: {BAR}"):
                self.tabs = ui.tabs(on_change=self._selected).props(
                    "dense no-caps inline-label outside-arrows mobile-arrows align=left breakpoint=0 "
                    "active-color=white indicator-color=light-blue-4"
                ).classes("grow min-w-0 text-grey-5").mark("terminal-tabs")  # fmt: skip
                self.new_button = ui.button(icon="add", on_click=self.open_new).props("flat round dense color=grey-4")
                named(self.new_button, "New terminal").tooltip("New terminal").mark("new-terminal")
            self.stack = ui.element("div").classes("relative w-full h-[28rem]").mark("terminal-stack")
            with self.stack:
                self.empty = ui.label("No terminal open: + opens one.").classes(
                    "absolute inset-0 flex items-center justify-center text-grey-5"
                ).mark("no-terminal")  # fmt: skip
        self._client.on_connect(self._connected)
        self._client.on_disconnect(self._disconnected)
        self._client.on_delete(self._disconnected)

    async def load(self) -> None:
        """The sandbox's open terminals (oldest first), or a new one if it has none."""
        try:
            terminals = await self._sandboxes.list_terminals(self._user_id, self._sandbox_id)
            if not terminals:
                terminals = [await self._open()]
        except DomainError as exc:
            ui.notify(exc.message, type="negative")
            return
        for terminal in terminals:
            self._add(terminal)
        self._select(terminals[-1].id)

    async def open_new(self) -> None:
        self.new_button.disable()
        try:
            terminal = await self._open()
        except DomainError as exc:
            ui.notify(exc.message, type="warning")
            return
        finally:
            self.new_button.enable()
        view = self._add(terminal)
        self._select(view.id)
        if self._client.has_socket_connection:
            view.start()

    async def close(self, view: TerminalView) -> None:
        """Remove the tab and hang the terminal up (its program ends)."""
        if view.id not in self._views:
            return  # a second click on its x
        index = list(self._views).index(view.id)
        del self._views[view.id]
        view.delete()
        self._tabs.pop(view.id).delete()
        rest = list(self._views)
        if rest:
            self._select(rest[min(index, len(rest) - 1)])
        else:
            self.empty.set_visibility(True)
        if not view.ended:
            with contextlib.suppress(DomainError):  # it ended meanwhile, or the sandbox went
                await self._sandboxes.close_terminal(self._user_id, self._sandbox_id, view.id)

    async def _open(self) -> Terminal:
        # sh, 24 by 80 until the xterm is fitted to its box (when the page connects)
        return await self._sandboxes.open_terminal(self._user_id, self._sandbox_id, TerminalCreate())

    def _add(self, terminal: Terminal) -> TerminalView:
        self._opened += 1
        title = f"Terminal {self._opened}"
        with self.tabs:
            tab = ui.tab(terminal.id, label=title).mark("terminal-tab", f"tab-{terminal.id}")
            with tab:
                close = ui.button(icon="close").props("flat round dense size=xs color=grey-5").classes("ml-1")
                named(close, f"Close {title}").tooltip("Close").mark("close-terminal", f"close-{terminal.id}")
        with self.stack:
            view = TerminalView(terminal, title, on_output=self._output, on_end=self._ended)
        close.on("click.stop", lambda: self.close(view))  # not also a click on the tab it sits in
        view.hide()
        self._views[view.id] = view
        self._tabs[view.id] = tab
        self.empty.set_visibility(False)
        return view

    def _select(self, terminal_id: str) -> None:
        if self.tabs.value == terminal_id:
            self._show(terminal_id)
        else:
            self.tabs.set_value(terminal_id)  # shows it through _selected

    def _selected(self, event: events.ValueChangeEventArguments) -> None:
        self._show(str(event.value))

    def _show(self, terminal_id: str) -> None:
        for view in self._views.values():
            if view.id != terminal_id:
                view.hide()
        if (shown := self._views.get(terminal_id)) is not None:
            shown.show()

    def _ended(self, view: TerminalView) -> None:
        if (tab := self._tabs.get(view.id)) is not None:
            tab.set_label(f"{view.title} (exited)")
            tab.set_icon("block")
            tab.mark("terminal-tab", f"tab-{view.id}", "terminal-ended")

    def _connected(self) -> None:
        for view in self._views.values():
            view.start()
        if (shown := self._views.get(str(self.tabs.value))) is not None:
            shown.show()

    def _disconnected(self) -> None:
        for view in self._views.values():
            view.stop()

    def _output(self) -> None:
        """Debounced: the file list is read again once the output has paused for QUIET_S."""
        self._more_output.set()
        if self._waiting is None or self._waiting.done():
            self._waiting = background_tasks.create(self._when_quiet(), name="terminal-quiet")

    async def _when_quiet(self) -> None:
        while True:
            self._more_output.clear()
            try:
                await asyncio.wait_for(self._more_output.wait(), QUIET_S)
            except TimeoutError:
                break
        if self._client.has_socket_connection:
            with self.stack, contextlib.suppress(DomainError):  # the stack: where a notification comes from
                await self._on_quiet()
