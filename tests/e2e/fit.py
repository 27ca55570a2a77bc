"""Does every table in <main> fit its column? Measured in the real browser, so the
table-fit test and a walk through the first admin's pages can share it."""

MEASURE = """() => {
  const out = {innerWidth: window.innerWidth, pageWidth: document.documentElement.scrollWidth,
               tables: [], clipped: []};
  document.querySelectorAll('main table').forEach((table, i) => {
    const box = table.parentElement;
    out.tables.push({index: i, tableWidth: table.scrollWidth, boxWidth: box.clientWidth});
    table.querySelectorAll('th, td').forEach((cell) => {
      if (cell.scrollWidth > cell.clientWidth + 1) {
        out.clipped.push(`table ${i} ${cell.tagName.toLowerCase()} `
          + `${cell.scrollWidth}>${cell.clientWidth}: ${cell.innerText.slice(0, 60)}`);
      }
    });
  });
  return out;
}"""


def measure(page) -> dict:
    """The page's and each main table's widths (px), and any clipped cell."""
    return page.evaluate(MEASURE)


def misfits(page) -> list[str]:
    """What does not fit: a table wider than its container, a page that scrolls
    sideways, a cell whose content is cut off. Empty when all fits."""
    m = measure(page)
    found = []
    if m["pageWidth"] > m["innerWidth"]:
        found.append(f"page scrolls sideways: {m['pageWidth']} > {m['innerWidth']} px")
    for t in m["tables"]:
        if t["tableWidth"] > t["boxWidth"] + 1:
            found.append(f"table {t['index']}: {t['tableWidth']} > {t['boxWidth']} px")
    found.extend(m["clipped"])
    return found
