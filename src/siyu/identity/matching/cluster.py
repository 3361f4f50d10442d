"""Scored pairs -> clusters: the connected components of the pairs at a threshold."""

from __future__ import annotations

import pyarrow as pa
from splink.clustering import cluster_pairwise_predictions_at_threshold

from siyu.identity.matching import engines

CLUSTER_SCHEMA = pa.schema(
    [pa.field("record_id", pa.int64(), nullable=False), pa.field("cluster_id", pa.int64())]
)


def cluster(record_ids: pa.Array, pairs: pa.Table, threshold: float) -> pa.Table:
    """(record_id, cluster_id) for every id in `record_ids`: records joined by pairs
    (PAIR_SCHEMA) whose match probability is at least `threshold` share a cluster_id,
    the smallest record_id of the cluster (Splink's connected components on DuckDB)."""
    api = engines.db_api("duckdb")
    nodes = pa.table({"record_id": pa.array(record_ids, pa.int64())})
    edges = pairs.select(["id_l", "id_r", "match_probability"])
    clusters = cluster_pairwise_predictions_at_threshold(
        nodes,
        edges,
        api,
        node_id_column_name="record_id",
        edge_id_column_name_left="id_l",
        edge_id_column_name_right="id_r",
        threshold_match_probability=threshold,
    )
    table = clusters.as_duckdbpyrelation().select("record_id, cluster_id").order("record_id")
    return table.to_arrow_table().cast(CLUSTER_SCHEMA)
