"""torch.compile (fullgraph), torch.export and ONNX export of the FAN models on CPU."""
import pytest
import torch

import timm


def _tiny(name: str = 'fan_t_hybrid_stl') -> torch.nn.Module:
    return timm.create_model(name, depth=2, num_classes=10)


@pytest.mark.parametrize('name', ['fan_t_hybrid_stl', 'fan_tiny_12_p16_224'])
def test_compile_fullgraph_inductor_inference(name):
    model = _tiny(name).eval()
    x = torch.randn(2, 3, 64, 64)
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), atol=1e-4, rtol=1e-4)


def test_compile_fullgraph_training_step_with_token_label_flag():
    torch._dynamo.reset()
    model = _tiny().train()
    model.set_token_label_training(True)
    compiled = torch.compile(model, fullgraph=True, backend='aot_eager')
    x = torch.randn(2, 3, 64, 64)
    cls_logits, token_logits = compiled(x)
    (cls_logits.logsumexp(-1).mean() + token_logits.logsumexp(-1).mean()).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize('name', ['fan_t_hybrid_stl', 'fan_tiny_12_p16_224'])
def test_torch_export_inference(name):
    model = _tiny(name).eval()
    x = torch.randn(2, 3, 64, 64)
    program = torch.export.export(model, (x,))
    torch.testing.assert_close(program.module()(x), model(x))


def test_onnx_export_matches_with_onnxruntime(tmp_path):
    pytest.importorskip('onnxscript', reason='ONNX export needs the onnxscript package (test extra)')
    ort = pytest.importorskip('onnxruntime', reason='checking the ONNX graph needs onnxruntime (test extra)')
    model = _tiny().eval()
    x = torch.randn(2, 3, 64, 64)
    path = tmp_path / 'fan.onnx'
    torch.onnx.export(model, (x,), dynamo=True).save(str(path))
    session = ort.InferenceSession(str(path))
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), model(x).detach(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('name', ['fan_t_hybrid_stl', 'fan_tiny_12_p16_224'])
def test_torchscript_and_fx_match_eager(name):
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names
    from timm.models._features_fx import get_notrace_functions, get_notrace_modules
    model = _tiny(name).eval()
    x = torch.randn(2, 3, 64, 64)
    scripted = torch.jit.script(model)
    torch.testing.assert_close(scripted(x), model(x))
    with pytest.raises(Exception, match='multiples of the token stride'):
        scripted(torch.randn(1, 3, 60, 64))  # the input check survives scripting
    tracer_kwargs = {'leaf_modules': get_notrace_modules(), 'autowrap_functions': get_notrace_functions()}
    last = get_graph_node_names(model, tracer_kwargs=tracer_kwargs)[1][-1]
    traced = create_feature_extractor(model, return_nodes=[last], tracer_kwargs=tracer_kwargs)
    torch.testing.assert_close(traced(x)[last], model(x))
