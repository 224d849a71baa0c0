//! Autodiff gradients against central finite differences, for each cell.
//!
//! The layer runs in f32 (Burn's float type); the scalar loss is accumulated on the host in f64
//! so the finite differences are not swamped by summation error. The case is a 2-layer
//! bidirectional layer with unequal sequence lengths, so the gradient through the masking of
//! padded steps is checked too. The finite differences are computed once on flex; the autodiff
//! gradients on every compiled backend are compared with them.

mod common;

use burn::tensor::{Device, Tensor};
use common::*;
use serde_json::Value;

const EPS: f64 = 1e-2;

/// `sum(out * r_out) + sum(h_n * r_h) (+ sum(c_n * r_c))`, accumulated in f64.
fn host_loss(case: &Value, weights: &Value, x: &Value, device: &Device) -> f64 {
    let mut layer = AnyLayer::from_case(case, device);
    set_weights(&mut layer, weights, device);
    let lengths = lengths_of(case);
    let (out, h_n, c_n) = layer.run(
        tensor::<3>(x, device),
        Some(tensor::<3>(&case["h0"], device)),
        case.get("c0").map(|c| tensor::<3>(c, device)),
        lengths.as_deref(),
    );
    let dot = |t: Tensor<3>, r: &Value| -> f64 {
        let (_, r) = shape_data(r);
        values(t)
            .iter()
            .zip(&r)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum()
    };
    let mut loss = dot(out, &case["r_out"]) + dot(h_n, &case["r_h"]);
    if let Some(c_n) = c_n {
        loss += dot(c_n, &case["r_c"]);
    }
    loss
}

fn lengths_of(case: &Value) -> Option<Vec<usize>> {
    case["lengths"]
        .as_array()
        .map(|a| a.iter().map(|l| l.as_u64().unwrap() as usize).collect())
}

/// Central difference of the loss with respect to the one number `perturb` moves.
fn central_difference(case: &Value, device: &Device, perturb: impl Fn(&mut Value, f64)) -> f64 {
    let mut plus = case.clone();
    perturb(&mut plus, EPS);
    let mut minus = case.clone();
    perturb(&mut minus, -EPS);
    (host_loss(&plus, &plus["weights"], &plus["input"], device)
        - host_loss(&minus, &minus["weights"], &minus["input"], device))
        / (2.0 * EPS)
}

fn bump(entry: &mut Value, i: usize, delta: f64) {
    let v = entry["data"][i].as_f64().unwrap();
    entry["data"][i] = Value::from(v + delta);
}

fn check_cell(file: &str) {
    // Case 7: 2 layers, bidirectional, lengths [5, 2, 4].
    let case = &load_cases(file)[7];
    assert_eq!(case["num_layers"], 2);
    assert_eq!(case["bidirectional"], true);
    assert!(case["lengths"].is_array());

    let plain = device();
    let mut reference: Vec<(String, usize, f64)> = Vec::new();
    let mut fd_input = Vec::new();
    let (_, xs) = shape_data(&case["input"]);
    for i in 0..xs.len() {
        fd_input.push(central_difference(case, &plain, |c, d| {
            bump(&mut c["input"], i, d)
        }));
    }
    for (pname, w) in case["weights"].as_object().unwrap() {
        let (_, ws) = shape_data(w);
        for i in 0..ws.len() {
            let fd = central_difference(case, &plain, |c, d| {
                bump(&mut c["weights"][pname.as_str()], i, d)
            });
            reference.push((pname.clone(), i, fd));
        }
    }
    for (backend, device) in devices() {
        check_backend(case, backend, &device, &fd_input, &reference);
    }
}

fn check_backend(
    case: &Value,
    backend: &str,
    device: &Device,
    fd_input: &[f64],
    fd_weights: &[(String, usize, f64)],
) {
    let name = format!("{} on {backend}", case["name"].as_str().unwrap());
    // Analytic gradients from autodiff.
    let ad = device.clone().autodiff();
    let mut layer = AnyLayer::from_case(case, &ad);
    set_weights(&mut layer, &case["weights"], &ad);
    let x = tensor::<3>(&case["input"], &ad).require_grad();
    let lengths = lengths_of(case);
    let (out, h_n, c_n) = layer.run(
        x.clone(),
        Some(tensor::<3>(&case["h0"], &ad)),
        case.get("c0").map(|c| tensor::<3>(c, &ad)),
        lengths.as_deref(),
    );
    let mut loss = (out * tensor::<3>(&case["r_out"], &ad)).sum()
        + (h_n * tensor::<3>(&case["r_h"], &ad)).sum();
    if let Some(c_n) = c_n {
        loss = loss + (c_n * tensor::<3>(&case["r_c"], &ad)).sum();
    }
    let grads = loss.backward();

    let mut worst = 0.0f64;
    let mut compared = 0usize;
    let mut compare = |what: String, analytic: f64, numeric: f64| {
        let err = (analytic - numeric).abs();
        let tol = 2e-3 + 1e-2 * numeric.abs();
        assert!(
            err <= tol,
            "{name}: {what}: autodiff {analytic} vs finite difference {numeric}"
        );
        worst = worst.max(err);
        compared += 1;
    };

    let gx = values(x.grad(&grads).unwrap());
    assert_eq!(gx.len(), fd_input.len());
    for (i, (g, fd)) in gx.iter().zip(fd_input).enumerate() {
        compare(format!("input[{i}]"), *g as f64, *fd);
    }
    let mut current: Option<(String, Vec<f32>)> = None;
    for (pname, i, fd) in fd_weights {
        if current.as_ref().map(|(n, _)| n != pname).unwrap_or(true) {
            let g = match param_mut(layer.layers_mut(), pname) {
                ParamSlot::Matrix(p) => values(p.val().grad(&grads).unwrap()),
                ParamSlot::Vector(p) => values(p.val().grad(&grads).unwrap()),
            };
            current = Some((pname.clone(), g));
        }
        let g = current.as_ref().unwrap().1[*i];
        compare(format!("{pname}[{i}]"), g as f64, *fd);
    }
    eprintln!(
        "{name}: {compared} gradient entries, worst |autodiff - finite difference| = {worst:.2e}"
    );
    assert!(compared > 100);
}

#[test]
fn elman_gradients_match_finite_differences() {
    check_cell("rnn_tanh.json");
}

#[test]
fn gru_gradients_match_finite_differences() {
    check_cell("gru.json");
}

#[test]
fn lstm_gradients_match_finite_differences() {
    check_cell("lstm.json");
}
