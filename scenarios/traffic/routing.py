"""Whole-graph shortest paths on link travel times (``scipy.sparse.csgraph``), pure numpy.

One Dijkstra call per re-route interval gives, for every destination and every node, the next
node on a shortest path; route preferences are an exponentially weighted mix of those trees
(UXsim's dynamic user optimum with inertia).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from scenarios.traffic.spec import FloatArray, IntArray


def _simple_graph(
    n_nodes: int, start: IntArray, end: IntArray, cost: FloatArray, reverse: bool
) -> csr_matrix:
    """A node-to-node cost matrix; parallel links keep their cheapest; ``inf`` costs dropped."""
    usable = np.isfinite(cost)
    rows, cols, weights = start[usable], end[usable], cost[usable]
    if reverse:
        rows, cols = cols, rows
    order = np.lexsort((weights, cols, rows))
    rows, cols, weights = rows[order], cols[order], weights[order]
    first = np.ones(rows.size, dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    return csr_matrix(
        (np.maximum(weights[first], 1e-9), (rows[first], cols[first])), shape=(n_nodes, n_nodes)
    )


def next_hops(
    n_nodes: int, start: IntArray, end: IntArray, cost_s: FloatArray, dests: IntArray
) -> tuple[IntArray, FloatArray]:
    """Next node towards each destination, and the cost to reach it.

    Parameters
    ----------
    n_nodes : number of nodes
    start, end : (m,) int, link end nodes
    cost_s : (m,) float, link costs (s); ``inf`` for closed links
    dests : (d,) int, destination nodes

    Returns
    -------
    next_node : (d, n) int, next node from each node towards each destination (-9999: none)
    cost : (d, n) float, shortest cost from each node to each destination (``inf``: no path)
    """
    graph = _simple_graph(n_nodes, start, end, cost_s, reverse=True)
    dist, pred = dijkstra(graph, directed=True, indices=dests, return_predecessors=True)
    return pred.astype(np.int64), dist


def shortest_costs(
    n_nodes: int, start: IntArray, end: IntArray, cost_s: FloatArray, origins: IntArray
) -> FloatArray:
    """Shortest cost from each of ``origins`` to every node: (o, n) float."""
    graph = _simple_graph(n_nodes, start, end, cost_s, reverse=False)
    result: FloatArray = dijkstra(graph, directed=True, indices=origins)
    return result


def update_preferences(
    pref: FloatArray,
    next_node: IntArray,
    start: IntArray,
    end: IntArray,
    weight: float,
) -> None:
    """Blend the newest shortest-path trees into ``pref`` in place.

    Parameters
    ----------
    pref : (d, m) float, preference of each link for each destination
    next_node : (d, n) int, from :func:`next_hops`
    start, end : (m,) int
    weight : share of the newest tree; rows still all zero take it whole
    """
    on_tree = next_node[:, start] == end[None, :]
    empty = pref.sum(axis=1) == 0
    weights = np.where(empty, 1.0, weight)[:, None]
    pref *= 1.0 - weights
    pref += weights * on_tree
