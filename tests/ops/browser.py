"""Real headless Chromium for the operations tests: screenshots, the rendered DOM, PNG sizes.

Chromium runs as root here, so it is started with --no-sandbox, in a fresh profile each time,
with every background service that could reach the network switched off. Each run is its own
process group, so a hung browser is killed with all of its helper processes.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from .support import require_tool

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def headless(url: str, *args: str, timeout: float = 90.0) -> str:
    """Run headless Chromium on url with args; its stdout. Fails with stderr when it does."""
    return _run(url, *args, timeout=timeout)[0]


CONSOLE_LINE = re.compile(r":CONSOLE[:(]\d*\)?\] (.*)$")
"""How Chromium's log (--enable-logging=stderr) shows a page's console message, in the
formats of recent releases: `INFO:CONSOLE:1] "..."` and `INFO:CONSOLE(1)] "..."`."""


def console_messages(url: str, timeout: float = 90.0) -> list[str]:
    """Everything the page wrote to the console while it loaded and ran: errors, uncaught
    exceptions, warnings."""
    _, log = _run(url, "--enable-logging=stderr", "--v=0", "--dump-dom", timeout=timeout)
    return [match.group(1) for line in log.splitlines() if (match := CONSOLE_LINE.search(line))]


def _run(url: str, *args: str, timeout: float = 90.0) -> tuple[str, str]:
    binary = require_tool("chromium", "chromium-browser", "google-chrome")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        with subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", *args, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: zygote, renderer, GPU helpers
        ) as process:
            try:
                out, err = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                out, err = process.communicate()
                raise AssertionError(
                    f"chromium did not finish within {timeout:.0f} s on {url}\n"
                    f"{err.decode(errors='replace')[-3000:]}"
                ) from None
        if process.returncode != 0:
            raise AssertionError(
                f"chromium exited with {process.returncode} on {url}\n"
                f"{err.decode(errors='replace')[-3000:]}"
            )
    return out.decode("utf-8", errors="replace"), err.decode("utf-8", errors="replace")


def screenshot(url: str, path: Path, width: int, height: int) -> None:
    headless(url, f"--screenshot={path}", f"--window-size={width},{height}")
    assert path.is_file(), f"chromium wrote no screenshot to {path}"


def dump_dom(url: str) -> str:
    """The document as Chromium serialises it after loading and running the page."""
    dom = headless(url, "--dump-dom")
    assert dom.strip(), f"chromium dumped an empty DOM for {url}"
    return dom


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, which a valid PNG has right after the signature."""
    with path.open("rb") as png:
        head = png.read(24)
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG (starts with {head[:8]!r})"
    length, chunk = struct.unpack(">I4s", head[8:16])
    assert chunk == b"IHDR", f"{path}: first chunk is {chunk!r}, not IHDR"
    assert length == 13
    width, height = struct.unpack(">II", head[16:24])
    return width, height


# Elements without an end tag: never pushed on the open-element stack.
_VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}  # fmt: skip


@dataclass
class Dom:
    """What the tests read from a serialised DOM."""

    #: text content of every element that has an id, whitespace-normalised
    text: dict[str, str] = field(default_factory=dict)
    #: rows (lists of cell texts) of every table that has an id
    tables: dict[str, list[list[str]]] = field(default_factory=dict)
    #: every start tag with its attributes, in document order
    tags: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    #: the contents of every <style> element
    styles: list[str] = field(default_factory=list)

    def urls(self) -> list[tuple[str, str, str]]:
        """(tag, attribute, value) of every attribute that can load or link something."""
        loading = {"src", "href", "srcset", "poster", "data", "action", "formaction", "background"}
        return [
            (tag, name, value)
            for tag, attributes in self.tags
            for name, value in attributes.items()
            if name in loading
        ]

    def metas(self) -> list[dict[str, str]]:
        return [attributes for tag, attributes in self.tags if tag == "meta"]


class _DomParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.dom = Dom()
        self._open: list[tuple[str, str | None]] = []  # (tag, id)
        self._texts: dict[str, list[str]] = {}
        self._table: list[str] = []  # ids of the tables we are in
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.dom.tags.append((tag, attributes))
        self._separate()
        if tag in _VOID:
            return
        element_id = attributes.get("id")
        self._open.append((tag, element_id))
        if element_id:
            self._texts.setdefault(element_id, [])
        if tag == "table" and element_id:
            self._table.append(element_id)
            self.dom.tables[element_id] = []
        elif tag == "tr" and self._table:
            self.dom.tables[self._table[-1]].append([])
        elif tag in ("td", "th") and self._table:
            rows = self.dom.tables[self._table[-1]]
            if not rows:
                rows.append([])
            rows[-1].append("")
        elif tag == "style":
            self._in_style = True
            self.dom.styles.append("")

    def handle_endtag(self, tag: str) -> None:
        self._separate()
        if tag in _VOID:
            return
        while self._open:
            open_tag, element_id = self._open.pop()
            if open_tag == "table" and element_id and self._table and self._table[-1] == element_id:
                self._table.pop()
            if open_tag == "style":
                self._in_style = False
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.dom.styles[-1] += data
            return
        for _, element_id in self._open:
            if element_id:
                self._texts[element_id].append(data)
        if self._table and self._inside_cell():
            rows = self.dom.tables[self._table[-1]]
            if rows and rows[-1]:
                rows[-1][-1] += data

    def _separate(self) -> None:
        """Element boundaries separate words ("error<div>title" is two words, as shown)."""
        if not self._in_style:
            self.handle_data(" ")

    def _inside_cell(self) -> bool:
        for tag, _ in reversed(self._open):
            if tag in ("td", "th"):
                return True
            if tag == "table":
                return False
        return False

    def result(self) -> Dom:
        self.dom.text = {k: " ".join("".join(v).split()) for k, v in self._texts.items()}
        for rows in self.dom.tables.values():
            for row in rows:
                row[:] = [" ".join(cell.split()) for cell in row]
        return self.dom


def parse_dom(document: str) -> Dom:
    parser = _DomParser()
    parser.feed(document)
    parser.close()
    return parser.result()


def keep_for_docs(shot: Path, target: Path) -> None:
    """Copy a screenshot into docs/ when asked (`make screenshots`): a test run must not
    rewrite tracked files, or every run would leave the working tree changed."""
    if os.environ.get("CLAIMS_UPDATE_SCREENSHOTS") == "1":
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, target)
