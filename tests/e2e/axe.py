"""axe-core in the real browser: WCAG 2.1 A/AA violations of the page as it
stands, collected page by page (tests/e2e/test_accessibility.py walks every
page; a journey's own test checks the pages only it reaches)."""

from axe_playwright_python.sync_playwright import Axe

WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE = Axe()

# axe lets aria-describedby name a missing id when another one exists; here
# every id an ARIA reference names must be on the page.
DANGLING_REFS = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('[aria-describedby], [aria-labelledby]')) {
    for (const attr of ['aria-describedby', 'aria-labelledby']) {
      for (const id of (el.getAttribute(attr) || '').split(/\\s+/).filter(Boolean)) {
        const who = el.id || el.name || el.tagName;
        if (!document.getElementById(id)) bad.push(`${who} ${attr}=${id}`);
      }
    }
  }
  return bad;
}"""


class Audit:
    """Runs axe on the page as it stands; remembers what each page broke."""

    def __init__(self, page):
        self.page = page
        self.visited = []
        self.found = []

    def check(self, label: str):
        results = AXE.run(
            self.page,
            options={"runOnly": {"type": "tag", "values": WCAG_AA}, "resultTypes": ["violations"]},
        )
        self.visited.append(label)
        for ref in self.page.evaluate(DANGLING_REFS):
            self.found.append(f"{label} [{self.page.url}]: dangling reference {ref}")
        for v in results.response["violations"]:
            targets = "; ".join(" ".join(n["target"]) for n in v["nodes"][:4])
            self.found.append(f"{label} [{self.page.url}]: {v['id']} ({v['impact']}): {targets}")

    def visit(self, url: str, label: str | None = None, status: int = 200):
        response = self.page.goto(url)
        if response.status != status:
            self.found.append(f"{label or url} [{url}]: status {response.status}, not {status}")
        self.check(label or url)

    def assert_clean(self):
        assert self.found == [], "\n".join(self.found)
