"""Live control for benchmark runs: each Flink engine reads its run's own control topic (never
the stack's, where an operator's promotions would change the figures), and the
`flink-cluster-live` engine runs with what a fraud team typically has in force: ten analyst
rules (feature-only and transaction-field ones, alert and suppress) and a shadow model (the
default model again, so the figures measure the cost of live control, not of another model).
"""

from __future__ import annotations

from connectors.control_topic import publish
from deploy.local.kafka import CONTROL_TOPIC_CONFIG, create_topics
from models.control import ControlMessage
from models.registry import default_model_dir, default_version
from models.rules import Rule

BENCH_RULES = (
    ("big-online", "amount > 1500 and category in ('shopping_net', 'misc_net')", "alert"),
    ("burst-1h", "count_1h >= 6 and sum_1h > 2000", "alert"),
    ("night-travel", "is_night and distance_from_home_km > 500", "alert"),
    ("impossible-trip", "speed_from_prev_kmh > 900", "alert"),
    ("new-merchant-big", "merchant_is_new and amount_to_mean_ratio > 8", "alert"),
    ("gas-spree", "category == 'gas_transport' and count_24h >= 12", "alert"),
    ("high-score-small-town", "score > 0.95 and city_pop < 2000", "alert"),
    ("grocery-small", "category in ('grocery_pos', 'grocery_net') and amount < 5", "suppress"),
    ("known-card-habit", "card_txn_count > 500 and amount_zscore < 1", "suppress"),
    ("state-watch", "state in ('NY', 'CA') and amount > 3000", "alert"),
)


def bench_rules() -> list[Rule]:
    """The ten rules of `flink-cluster-live` (compiled: a typo fails here, not in the job)."""
    return [Rule(name, expression, action=action) for name, expression, action in BENCH_RULES]


def prepare_control_topic(bootstrap: str, topic: str, live: bool) -> str:
    """Create the run's control topic (compacted, one partition); with `live`, publish the
    ten rules and the default model as shadow. Returns the topic name."""
    create_topics(bootstrap, (topic,), 1, CONTROL_TOPIC_CONFIG)
    if live:
        for rule in bench_rules():
            publish(bootstrap, topic, ControlMessage.put_rule(rule))
        onnx = (default_model_dir() / "model.onnx").read_bytes()
        publish(bootstrap, topic, ControlMessage.shadow(default_version(), onnx=onnx))
    return topic
