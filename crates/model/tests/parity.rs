//! Forward outputs, final states and gradients match PyTorch (fixtures from
//! `scripts/fixtures/make_parity_fixtures.py`): every cell, 1 and 2 layers, uni- and
//! bidirectional, with and without per-sequence lengths, with and without biases.

mod common;

use burn::tensor::Device;
use common::*;
use serde_json::Value;

const FORWARD_TOL: f32 = 1e-5;
const GRAD_TOL: f32 = 1e-4;

fn check_case(case: &Value, backend: &str, device: &Device) {
    let name = format!("{} on {backend}", case["name"].as_str().unwrap());
    let device = device.clone().autodiff();
    let mut layer = AnyLayer::from_case(case, &device);
    set_weights(&mut layer, &case["weights"], &device);

    let x = tensor::<3>(&case["input"], &device).require_grad();
    let h0 = tensor::<3>(&case["h0"], &device).require_grad();
    let c0 = case
        .get("c0")
        .map(|c| tensor::<3>(c, &device).require_grad());
    let lengths: Option<Vec<usize>> = case["lengths"]
        .as_array()
        .map(|a| a.iter().map(|l| l.as_u64().unwrap() as usize).collect());

    let (out, h_n, c_n) = layer.run(x.clone(), Some(h0.clone()), c0.clone(), lengths.as_deref());

    let mut report = Vec::new();
    let mut check = |what: &str, diff: f32, tol: f32| {
        report.push(format!("{what}: {diff:.2e}"));
        assert!(
            diff <= tol,
            "{name}: {what} differs from PyTorch by {diff:e} (> {tol:e})"
        );
    };
    check(
        "output",
        max_abs_diff(out.clone(), &case["output"]),
        FORWARD_TOL,
    );
    check("h_n", max_abs_diff(h_n.clone(), &case["h_n"]), FORWARD_TOL);

    let mut loss = (out * tensor::<3>(&case["r_out"], &device)).sum()
        + (h_n * tensor::<3>(&case["r_h"], &device)).sum();
    if let Some(c_n) = c_n {
        check("c_n", max_abs_diff(c_n.clone(), &case["c_n"]), FORWARD_TOL);
        loss = loss + (c_n * tensor::<3>(&case["r_c"], &device)).sum();
    }
    let loss_value = values(loss.clone())[0] as f64;
    let want = case["loss"].as_f64().unwrap();
    assert!(
        (loss_value - want).abs() <= 1e-4 * want.abs().max(1.0),
        "{name}: loss {loss_value} vs PyTorch {want}"
    );

    let grads = loss.backward();
    check(
        "grad input",
        max_abs_diff(x.grad(&grads).expect("input grad"), &case["grad_input"]),
        GRAD_TOL,
    );
    check(
        "grad h0",
        max_abs_diff(h0.grad(&grads).expect("h0 grad"), &case["grad_h0"]),
        GRAD_TOL,
    );
    if let Some(c0) = c0 {
        check(
            "grad c0",
            max_abs_diff(c0.grad(&grads).expect("c0 grad"), &case["grad_c0"]),
            GRAD_TOL,
        );
    }
    let expected_grads = case["grad_weights"].as_object().unwrap();
    assert_eq!(
        expected_grads.len(),
        case["weights"].as_object().unwrap().len(),
        "{name}: every weight has a reference gradient"
    );
    for (pname, want) in expected_grads {
        let diff = match param_mut(layer.layers_mut(), pname) {
            ParamSlot::Matrix(p) => max_abs_diff(p.val().grad(&grads).expect("grad"), want),
            ParamSlot::Vector(p) => max_abs_diff(p.val().grad(&grads).expect("grad"), want),
        };
        check(&format!("grad {pname}"), diff, GRAD_TOL);
    }
    eprintln!("{name}: {}", report.join(", "));
}

fn check_file(file: &str) {
    let cases = load_cases(file);
    assert_eq!(cases.len(), 9, "{file}: 8 configurations + 1 without bias");
    for (backend, device) in devices() {
        for case in &cases {
            check_case(case, backend, &device);
        }
    }
}

#[test]
fn elman_tanh_matches_pytorch() {
    check_file("rnn_tanh.json");
}

#[test]
fn elman_relu_matches_pytorch() {
    check_file("rnn_relu.json");
}

#[test]
fn gru_matches_pytorch() {
    check_file("gru.json");
}

#[test]
fn lstm_matches_pytorch() {
    check_file("lstm.json");
}

/// The fixtures are not trivially satisfied: a layer with its own random weights is far off.
#[test]
fn parity_check_detects_wrong_weights() {
    let case = &load_cases("gru.json")[0];
    let device = device();
    let layer = AnyLayer::from_case(case, &device);
    let x = tensor::<3>(&case["input"], &device);
    let h0 = tensor::<3>(&case["h0"], &device);
    let (out, _, _) = layer.run(x, Some(h0), None, None);
    assert!(max_abs_diff(out, &case["output"]) > 1e-2);
}
