"""Learned DARTS cells drawn with graphviz (the python `graphviz` package, rendered to SVG by `dot`).

Nodes: the two cell inputs c_{k-2} and c_{k-1}, the intermediate nodes 0..3, and the output c_{k}
(the concatenation); each selected edge is labelled with its op.
"""

from __future__ import annotations

import html
import re
from typing import Any

INPUT_STYLE = {"style": "filled,rounded", "shape": "box", "fillcolor": "darkseagreen2"}
NODE_STYLE = {"style": "filled", "shape": "box", "fillcolor": "lightblue"}
OUTPUT_STYLE = {"style": "filled,rounded", "shape": "box", "fillcolor": "palegoldenrod"}


class CellDrawingError(RuntimeError):
    """graphviz (python package or the `dot` program) is unavailable or failed."""


def _node_name(index: int) -> str:
    return {0: "c_{k-2}", 1: "c_{k-1}"}.get(index, str(index - 2))


def cell_dot(pairs: list[Any], concat: list[int] | None, title: str = ""):
    """A graphviz.Digraph of one cell: pairs = [[op, input], ...] (2 per node)."""
    import graphviz

    graph = graphviz.Digraph(
        format="svg",
        graph_attr={"rankdir": "LR", "fontname": "Helvetica", "fontsize": "14", "label": title,
                    "labelloc": "t", "nodesep": "0.3", "ranksep": "0.55", "bgcolor": "white",
                    "pad": "0.15"},
        node_attr={"fontname": "Helvetica", "fontsize": "13", "height": "0.45", "width": "0.5",
                   "penwidth": "1.5", "align": "center"},
        edge_attr={"fontname": "Helvetica", "fontsize": "11", "penwidth": "1.3"},
    )
    graph.node("c_{k-2}", **INPUT_STYLE)
    graph.node("c_{k-1}", **INPUT_STYLE)
    n_nodes = len(pairs) // 2
    for node in range(n_nodes):
        graph.node(str(node), **NODE_STYLE)
    for k, (op, index) in enumerate(pairs):
        graph.edge(_node_name(int(index)), str(k // 2), label=str(op), fillcolor="gray")
    graph.node("c_{k}", **OUTPUT_STYLE)
    for state in (concat if concat else range(2, 2 + n_nodes)):
        graph.edge(_node_name(int(state)), "c_{k}", fillcolor="gray", style="dashed")
    return graph


def cell_svg(pairs: list[Any], concat: list[int] | None, title: str = "") -> bytes:
    """The cell as a standalone SVG document (bytes)."""
    try:
        import graphviz

        return cell_dot(pairs, concat, title).pipe(format="svg")
    except ImportError as error:
        raise CellDrawingError(f"python package graphviz missing: {error}") from error
    except (graphviz.ExecutableNotFound, graphviz.CalledProcessError, OSError) as error:
        raise CellDrawingError(f"graphviz `dot` failed: {error}") from error


_ID_RE = re.compile(r'\bid="([^"]+)"')
_REF_RE = re.compile(r'(url\(#|xlink:href="#|href="#)([^")]+)')


def inline_svg(svg: bytes | str, prefix: str) -> str:
    """An SVG document made safe to inline in HTML: no XML prolog/DOCTYPE/comments, unique ids."""
    text = svg.decode("utf-8") if isinstance(svg, bytes) else svg
    text = re.sub(r"<\?xml[^>]*\?>", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>", "", text, flags=re.S)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = _ID_RE.sub(lambda m: f'id="{prefix}-{m.group(1)}"', text)
    text = _REF_RE.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", text)
    # Scale with the page: keep the viewBox, let CSS size it.
    text = re.sub(r'<svg([^>]*?)\swidth="([^"]+)"\s+height="([^"]+)"',
                  lambda m: f'<svg{m.group(1)} data-width="{m.group(2)}" data-height="{m.group(3)}" '
                            f'style="max-width:100%;width:{m.group(2)};height:auto"',
                  text, count=1)
    return text.strip()


def cell_fallback_html(pairs: list[Any], concat: list[int] | None) -> str:
    """A plain table of the cell's edges (used when graphviz cannot draw)."""
    rows = "".join(
        f"<tr><td>{html.escape(_node_name(int(i)))}</td><td>{k // 2}</td><td>{html.escape(str(op))}</td></tr>"
        for k, (op, i) in enumerate(pairs))
    return ("<table class='data'><thead><tr><th>from</th><th>to node</th><th>op</th></tr></thead>"
            f"<tbody>{rows}</tbody></table><p>concat: {html.escape(str(concat))}</p>")
