"""Member analytics: retention by order count and its knee, RFM, CLV.

Written once as Ibis expressions (retention, rfm, clv) and run through one port
(engines: DuckDB by default, Spark as the `siyu[spark]` extra). Importing this package
imports neither Ibis's Spark backend nor PySpark. Definitions: docs/analytics.md.
"""
