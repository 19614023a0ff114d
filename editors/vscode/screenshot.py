"""The README's picture of the extension's colours: render.js's HTML, photographed by chromium.

    node editors/vscode/render.js campaigns/welcome.nurture out.html 11 48
    python editors/vscode/screenshot.py out.html docs/images/vscode-grammar.png

No VS Code runs here, so the tokens are the grammar's own (vscode-textmate, as
VS Code tokenizes) and the browser is Debian's chromium driven by Playwright.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from playwright.async_api import async_playwright


async def shoot(page_file: Path, out: Path) -> None:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        sys.exit("Debian's chromium is not installed (apt-get install chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        page = await browser.new_page(viewport={"width": 1100, "height": 200})
        await page.goto(page_file.resolve().as_uri())
        out.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(out), full_page=True)
        await browser.close()


if __name__ == "__main__":
    asyncio.run(shoot(Path(sys.argv[1]), Path(sys.argv[2])))
