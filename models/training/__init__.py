"""Training for feature set card_activity_v1: data -> validation -> features -> time split ->
model comparison -> cost threshold -> ONNX export -> report. Entry: `fraudstream train`."""
