"""export_model.py, one test per source: the exported directory, run by a float64 numpy
reference in PyTorch layout, reproduces the framework's own numbers; and the committed
fixture directories are exactly what the tool writes today."""
import json
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import export_model  # noqa: E402
import make_fixtures  # noqa: E402
import reference  # noqa: E402
import st_io  # noqa: E402
import verify_export  # noqa: E402

GOLDEN = os.path.join(ROOT, "Tests", "Fixtures", "golden")
MODELS = os.path.join(ROOT, "Tests", "Fixtures", "models")
CASES = sorted(d for d in os.listdir(GOLDEN) if os.path.isdir(os.path.join(GOLDEN, d)))


def check(case_name, out_dir):
    case = json.load(open(os.path.join(GOLDEN, case_name, "case.json")))
    tensors, cfg = make_fixtures.export_case(os.path.join(GOLDEN, case_name), str(out_dir))
    written, _ = st_io.read(os.path.join(out_dir, "model.safetensors"))
    assert sorted(written) == sorted(tensors)
    x = np.array(case["x"], dtype=np.float32)
    h0 = None if case["h0"] is None else np.array(case["h0"], dtype=np.float32)
    c0 = None if case["c0"] is None else np.array(case["c0"], dtype=np.float32)
    config = json.load(open(os.path.join(out_dir, "config.json")))
    tol = 1e-5 * max(1, case["seq_len"] / 100)
    if "layers" in config:  # Keras: the answer of the whole model
        np.testing.assert_allclose(reference.forward_layers(written, config, x, h0, c0), np.array(case["expected"]["head"]), rtol=tol, atol=tol)
        return cfg
    seq, head = reference.forward(written, config, x, h0, c0)
    np.testing.assert_allclose(seq, np.array(case["expected"]["output"]), rtol=tol, atol=tol)
    if case["expected"].get("head") is not None:
        np.testing.assert_allclose(head, np.array(case["expected"]["head"]), rtol=tol, atol=tol)
    return cfg


@pytest.mark.parametrize("case", [c for c in CASES if c.startswith("keras_")])
def test_keras_files_export_to_pytorch_layout(case, tmp_path):
    cfg = check(case, tmp_path)
    assert cfg["source"]["framework"] == "keras"


@pytest.mark.parametrize("case", [c for c in CASES if c.startswith("onnx_")])
def test_onnx_files_export_to_pytorch_layout(case, tmp_path):
    cfg = check(case, tmp_path)
    assert cfg["source"]["framework"] == "onnx"


@pytest.mark.parametrize("case", ["pt_lstm_2layer", "pt_bilstm_2layer", "pt_rnn_relu", "pt_lstm_f16"])
def test_pytorch_state_dicts_export_as_they_are(case, tmp_path):
    cfg = check(case, tmp_path)
    assert cfg["source"]["framework"] == "pytorch"


def test_keras_lstm_keeps_its_single_bias_so_the_parameter_count_is_keras(tmp_path):
    tensors, _ = export_model.export(os.path.join(GOLDEN, "keras_lstm128", "model.keras"), str(tmp_path))
    assert "lstm.bias_hh_l0" not in tensors
    assert sum(v.size for k, v in tensors.items() if k.startswith("lstm.")) == 66560


@pytest.mark.parametrize("case", CASES)
def test_committed_fixture_directories_are_what_the_tool_writes(case, tmp_path):
    make_fixtures.export_case(os.path.join(GOLDEN, case), str(tmp_path))
    for name in ("model.safetensors", "config.json"):
        with open(os.path.join(tmp_path, name), "rb") as a, open(os.path.join(MODELS, case, name), "rb") as b:
            assert a.read() == b.read(), f"{case}/{name} differs: run tools/make_fixtures.py"


def test_unsupported_inputs_fail_with_a_message(tmp_path):
    with pytest.raises(export_model.ExportError, match="unknown source type"):
        export_model.export(os.path.join(GOLDEN, "pt_lstm_h1", "case.json"), str(tmp_path))


def test_keras_weights_are_found_by_class_path_whatever_the_layer_names(tmp_path):
    """A model whose Dense is named dense_1 stores it under layers/dense (written by
    tools/generate_golden.py with real Keras)."""
    d = os.path.join(ROOT, "Tests", "Fixtures", "generated", "keras_gru_renamed_layers")
    case = json.load(open(os.path.join(d, "case.json")))
    export_model.export(os.path.join(d, "model.keras"), str(tmp_path))
    written, _ = st_io.read(os.path.join(tmp_path, "model.safetensors"))
    cfg = json.load(open(os.path.join(tmp_path, "config.json")))
    assert [(l["type"], l.get("reset_after"), l["activation"]) for l in cfg["layers"]] == [("gru", False, "tanh"), ("dense", None, "sigmoid")]
    y = reference.forward_layers(written, cfg, np.array(case["x"], dtype=np.float32))
    np.testing.assert_allclose(y, np.array(case["expected"]["head"]), rtol=1e-5, atol=1e-5)


PIPELINES = os.path.join(ROOT, "Tests", "Fixtures", "pipelines")
PIPELINE_CASES = sorted(os.listdir(PIPELINES))


@pytest.mark.parametrize("case", PIPELINE_CASES)
def test_whole_models_export_to_what_the_framework_answers(case, tmp_path):
    """Keras Sequential and Functional files, and PyTorch state_dicts with their layers config,
    from tools/generate_golden.py --pipelines; the committed model directory is what the tool
    writes."""
    c = json.load(open(os.path.join(PIPELINES, case, "case.json")))
    extra = json.load(open(os.path.join(PIPELINES, case, c["config"]))) if c.get("config") else None
    tensors, cfg = export_model.export(os.path.join(PIPELINES, case, c["source"]), str(tmp_path), name=case, extra=extra)
    y = reference.forward_layers(tensors, cfg, np.array(c["x"], dtype=np.float32), c.get("h0"), c.get("c0"))
    np.testing.assert_allclose(y, np.array(c["expected"]), rtol=1e-5, atol=1e-5)
    for name in ("model.safetensors", "config.json"):
        with open(os.path.join(tmp_path, name), "rb") as a, open(os.path.join(MODELS, case, name), "rb") as b:
            assert a.read() == b.read(), f"{case}/{name} differs: run tools/make_fixtures.py --skip-copy"


def test_the_tutorials_sequential_temperature_model_exports_with_its_activations(tmp_path):
    c = os.path.join(PIPELINES, "keras_tutorial_temperature", "model.keras")
    tensors, cfg = export_model.export(c, str(tmp_path))
    assert [(l["type"], l.get("activation")) for l in cfg["layers"]] == [("lstm", "relu"), ("dense", "linear"), ("activation", "relu")]
    assert sum(v.size for k, v in tensors.items() if k.startswith("lstm.")) == 66560
    assert cfg["inputs"] == {"window": 7}


def test_an_unsupported_keras_layer_is_refused_naming_it(tmp_path, capsys):
    import zipfile
    src = os.path.join(PIPELINES, "keras_airline", "model.keras")
    bad = os.path.join(tmp_path, "bad.keras")
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(bad, "w") as out:
        for item in z.namelist():
            data = z.read(item)
            if item == "config.json":
                config = json.loads(data)
                config["config"]["layers"][-1]["class_name"] = "Conv3D"
                data = json.dumps(config).encode()
            out.writestr(item, data)
    assert export_model.main([bad, str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("(Conv3D) is not supported") and "Keras layer dense" in err[0]


@pytest.mark.parametrize("case, kind", [("onnx_torchscript_lstmcell_loop", "lstm"), ("onnx_dynamo_lstmcell_loop", "lstm"),
                                        ("onnx_torchscript_grucell_loop", "gru"), ("onnx_dynamo_grucell_loop", "gru"),
                                        ("onnx_dynamo_rnn_uni_tm", "rnn"), ("onnx_dynamo_rnn_bi_bf", "rnn")])
def test_an_unrolled_cell_loop_imports_as_its_recurrent_layers(case, kind, tmp_path):
    """nn.LSTMCell / nn.GRUCell looped in forward(), and an nn.RNN that the dynamo exporter unrolls
    (two layers of two directions, too): one block of nodes per timestep, read back as the
    recurrent layers they are."""
    _, cfg = export_model.export(os.path.join(PIPELINES, case, "model.onnx"), str(tmp_path))
    recurrent = [l for l in cfg["layers"] if l["type"] == kind]
    assert len(recurrent) == (2 if "_bi_" in case else 1) and cfg["layers"][len(recurrent)]["type"] == "last_timestep"
    assert all(l.get("bidirectional", False) == ("_bi_" in case) for l in recurrent)


def test_a_loop_that_is_no_cell_is_refused_naming_its_node(tmp_path, capsys):
    """The same loop with one Sigmoid made a Tanh: the weights are reused at every step, but no
    cell computes what it does."""
    import onnx
    model = onnx.load(os.path.join(PIPELINES, "onnx_torchscript_lstmcell_loop", "model.onnx"))
    sig = [n for n in model.graph.node if n.op_type == "Sigmoid"][-1]
    sig.op_type = "Tanh"
    bad = str(tmp_path / "bad.onnx")
    onnx.save(model, bad)
    assert export_model.main([bad, str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "like an unrolled nn.LSTMCell, nn.GRUCell or nn.RNNCell loop" in err[0] and " node " in err[0], err


def test_every_onnx_node_is_consumed_or_the_export_is_refused_naming_it(tmp_path, capsys):
    import onnx
    model = onnx.load(os.path.join(PIPELINES, "onnx_torchscript_softmax_head", "model.onnx"))
    node = [n for n in model.graph.node if n.op_type == "Softmax"][0]
    node.op_type = "Cos"
    del node.attribute[:]  # Softmax's axis: Cos has none
    bad = str(tmp_path / "bad.onnx")
    onnx.save(model, bad)
    assert export_model.main([bad, str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"export_model: Cos node {node.name}: is not supported")


@pytest.mark.parametrize("change, message", [("op", "is not supported on frames"), ("ceil_mode", "ceil_mode")])
def test_a_frame_node_lstm_serve_cannot_compute_is_refused_naming_it(tmp_path, capsys, change, message):
    import onnx
    model = onnx.load(os.path.join(PIPELINES, "onnx_torchscript_frames_lstm", "model.onnx"))
    node = [n for n in model.graph.node if n.op_type == "MaxPool"][0]
    if change == "op":
        node.op_type = "LpPool"
    else:
        for a in node.attribute:
            if a.name == "ceil_mode":
                a.i = 1
    bad = str(tmp_path / "bad.onnx")
    onnx.save(model, bad)
    assert export_model.main([bad, str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"export_model: {node.op_type} node {node.name}:") and message in err[0], err


@pytest.mark.parametrize("case, fix", [("pt_mlp_head", "layers"), ("pt_fc_head", "--head-prefix fc"), ("pt_grucell_loop", "layers")])
def test_a_state_dict_the_names_cannot_place_is_refused_with_the_fix_and_the_fix_is_exact(case, fix, tmp_path, capsys):
    """nn.Sequential(Linear, ReLU, Linear) leaves head.1 out of the file, a head named fc is not
    'head', a GRUCell has no layer index: each is refused at export, naming what to write; with
    it written, the answer is the framework's."""
    c = json.load(open(os.path.join(PIPELINES, case, "case.json")))
    source = os.path.join(PIPELINES, case, "model.safetensors")
    assert export_model.main([source, str(tmp_path / "refused")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fix in err[0], err
    assert not os.path.exists(tmp_path / "refused" / "config.json")
    if fix == "layers":
        extra = json.loads(err[0][err[0].index('{"layers"'):])
        tensors, cfg = export_model.export(source, str(tmp_path / "fixed"), extra=extra)
    else:
        tensors, cfg = export_model.export(source, str(tmp_path / "fixed"), head_prefix="fc")
    y = reference.forward_layers(tensors, cfg, np.array(c["x"], dtype=np.float32), c.get("h0"), c.get("c0"))
    np.testing.assert_allclose(y, np.array(c["expected"]), rtol=1e-5, atol=1e-5)


def test_a_layers_list_that_leaves_a_tensor_out_is_refused(tmp_path):
    extra = {"layers": [{"type": "lstm", "weights": "lstm"}, {"type": "last_timestep"}, {"type": "dense", "weights": "head.0"}]}
    with pytest.raises(export_model.ExportError, match="tensor 'head.2.bias' is used by no entry"):
        export_model.export(os.path.join(PIPELINES, "pt_mlp_head", "model.safetensors"), str(tmp_path), extra=extra)


needs_server_and_ort = pytest.mark.skipif(
    verify_export.find_binary() is None or __import__("importlib").util.find_spec("onnxruntime") is None,
    reason="needs a built lstm-serve and onnxruntime")


@needs_server_and_ort
@pytest.mark.parametrize("case", [c for c in PIPELINE_CASES if c.startswith("onnx_")])
def test_the_exporter_loads_what_it_wrote_and_compares_it_with_onnxruntime(case, tmp_path, capsys):
    c = json.load(open(os.path.join(PIPELINES, case, "case.json")))
    assert export_model.main([os.path.join(PIPELINES, case, c["source"]), str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "parameters: recurrent" in out  # lstm-serve inspect's table
    if "h0" in c and "drawn" in c["module"]:
        assert "not compared with the framework: the graph draws its initial state at random" in out
    else:
        worst = float(out.split("(1 + |framework|) = ")[1].split()[0])
        assert worst <= 1e-5


@needs_server_and_ort
def test_an_export_that_computes_something_else_fails_the_comparison(tmp_path):
    source = os.path.join(PIPELINES, "onnx_dynamo_gru_uni_tm", "model.onnx")
    tensors, cfg = export_model.export(source, str(tmp_path))
    tensors["gru_0.weight_hh_l0"] = tensors["gru_0.weight_hh_l0"] * 1.001
    st_io.write(os.path.join(tmp_path, "model.safetensors"), tensors)
    with pytest.raises(verify_export.VerifyError, match="does not compute what the framework computes"):
        verify_export.compare(source, str(tmp_path), verify_export.find_binary())
