"""Build tiny-piper.onnx: a stand-in with a real Piper voice's inputs and outputs.

It is NOT a voice: it plays one tone per phoneme id (256 samples each, times the length
scale), so tests can run the real piper-tts runtime (phonemizer, id map, onnxruntime,
sentence splitting, speed) without a 60 MB trained model, which we cannot download here.
Regenerate with: `pip install onnx && python tests/voice/data/make_tiny_piper.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
from onnx import TensorProto, helper

HERE = Path(__file__).parent
HOP = 256.0


def const(name: str, value, dtype=TensorProto.INT64, dims=()):
    vals = value if isinstance(value, list) else [value]
    return helper.make_node(
        "Constant", [], [name], value=helper.make_tensor(name, dtype, dims, vals)
    )


def build() -> onnx.ModelProto:
    nodes = [
        const("one_i", 1),
        const("zero_i", 0),
        const("one_axis", [1], dims=[1]),
        const("zero_axis", [0], dims=[1]),
        const("hop", HOP, TensorProto.FLOAT),
        const("base", 0.02, TensorProto.FLOAT),
        const("step", 0.002, TensorProto.FLOAT),
        const("gain", 0.5, TensorProto.FLOAT),
        const("out_shape", [1, 1, -1], dims=[3]),
        # samples per phoneme = max(1, round(length_scale * 256))
        helper.make_node("Shape", ["input"], ["in_shape"]),
        helper.make_node("Gather", ["in_shape", "one_i"], ["n"], axis=0),
        helper.make_node("Gather", ["scales", "one_i"], ["length_scale"], axis=0),
        helper.make_node("Mul", ["length_scale", "hop"], ["per_f"]),
        helper.make_node("Round", ["per_f"], ["per_r"]),
        helper.make_node("Cast", ["per_r"], ["per_raw"], to=TensorProto.INT64),
        helper.make_node("Max", ["per_raw", "one_i"], ["per"]),
        # ids repeated `per` times each: [N] -> [N, 1] -> [N, per] -> [N * per]
        helper.make_node("Squeeze", ["input", "zero_axis"], ["ids"]),
        helper.make_node("Unsqueeze", ["ids", "one_axis"], ["ids_col"]),
        helper.make_node("Unsqueeze", ["n", "zero_axis"], ["n_1"]),
        helper.make_node("Unsqueeze", ["per", "zero_axis"], ["per_1"]),
        helper.make_node("Concat", ["n_1", "per_1"], ["grid"], axis=0),
        helper.make_node("Expand", ["ids_col", "grid"], ["ids_grid"]),
        const("flat", [-1], dims=[1]),
        helper.make_node("Reshape", ["ids_grid", "flat"], ["rep"]),
        helper.make_node("Cast", ["rep"], ["rep_f"], to=TensorProto.FLOAT),
        # a tone whose pitch follows the phoneme id
        helper.make_node("Shape", ["rep"], ["t_shape"]),
        helper.make_node("Gather", ["t_shape", "zero_i"], ["t_len"], axis=0),
        helper.make_node("Range", ["zero_i", "t_len", "one_i"], ["t"]),
        helper.make_node("Cast", ["t"], ["t_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["rep_f", "step"], ["df"]),
        helper.make_node("Add", ["df", "base"], ["freq"]),
        helper.make_node("Mul", ["t_f", "freq"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["wave"]),
        helper.make_node("Mul", ["wave", "gain"], ["audio"]),
        helper.make_node("Reshape", ["audio", "out_shape"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_piper",
        [
            helper.make_tensor_value_info("input", TensorProto.INT64, [1, "n"]),
            helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, "t"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def config() -> dict:
    from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP

    return {
        "audio": {"sample_rate": 16000},
        "espeak": {"voice": "en-us"},
        "phoneme_type": "espeak",
        "num_symbols": 256,
        "num_speakers": 1,
        "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8},
        "phoneme_id_map": DEFAULT_PHONEME_ID_MAP,
        "piper_version": "tiny-test",
    }


if __name__ == "__main__":
    onnx.save(build(), HERE / "tiny-piper.onnx")
    (HERE / "tiny-piper.onnx.json").write_text(json.dumps(config(), ensure_ascii=False))
    print("wrote", HERE / "tiny-piper.onnx")
