//! The sLSTM cell: its output against the unstabilised equations computed on the host in f64
//! (including input gates whose exponential overflows f32), its gradients against central
//! finite differences, and the starting biases.

mod common;

use burn::module::Param;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use common::*;
use gatecast_model::forecast::{SLstm, SLstmConfig};

fn host(t: Tensor<2>) -> Vec<f64> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

fn host3(t: Tensor<3>) -> Vec<f64> {
    let [a, b, c] = t.dims();
    host(t.reshape([a, b * c]))
}

/// The cell's gate biases `[4·d]` on the host.
fn bias_of(cell: &SLstm) -> Vec<f64> {
    let bias = cell.input.bias.as_ref().expect("the cell has biases").val();
    host(bias.reshape([1, 4 * cell.hidden_size()]))
}

/// A cell with random recurrent weights (they start at zero) and `shift` added to every input
/// gate's bias.
fn cell(input: usize, d: usize, shift: f32, device: &Device) -> SLstm {
    let mut cell = SLstmConfig::new(input, d).try_init(device).unwrap();
    cell.recurrent = Param::from_tensor(Tensor::random(
        [d, 4 * d],
        Distribution::Normal(0.0, 0.5),
        device,
    ));
    let mut bias = bias_of(&cell);
    for b in bias.iter_mut().take(d) {
        *b += shift as f64;
    }
    let bias: Vec<f32> = bias.into_iter().map(|b| b as f32).collect();
    cell.input.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(bias, [4 * d]),
        device,
    )));
    cell
}

/// The unstabilised sLSTM over `x [rows, steps, input]` in f64 from a zero state: every step's
/// output `h`, `[steps][rows · d]`.
fn reference(cell: &SLstm, x: &Tensor<3>) -> Vec<Vec<f64>> {
    let [rows, steps, input] = x.dims();
    let d = cell.hidden_size();
    let w = host(cell.input.weight.val()); // [input, 4d]
    let b = bias_of(cell);
    let r = host(cell.recurrent.val()); // [d, 4d]
    let x = host3(x.clone());
    let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
    let (mut h, mut c, mut n) = (
        vec![0.0; rows * d],
        vec![0.0; rows * d],
        vec![0.0; rows * d],
    );
    let mut out = Vec::new();
    for t in 0..steps {
        let mut next_h = vec![0.0; rows * d];
        for row in 0..rows {
            let raw = |g: usize, k: usize| {
                let col = g * d + k;
                let mut v = b[col];
                for j in 0..input {
                    v += x[(row * steps + t) * input + j] * w[j * 4 * d + col];
                }
                for j in 0..d {
                    v += h[row * d + j] * r[j * 4 * d + col];
                }
                v
            };
            for k in 0..d {
                let (i, f, z, o) = (raw(0, k).exp(), sigmoid(raw(1, k)), raw(2, k), raw(3, k));
                let at = row * d + k;
                c[at] = f * c[at] + i * z.tanh();
                n[at] = f * n[at] + i;
                next_h[at] = sigmoid(o) * c[at] / n[at];
            }
        }
        h = next_h;
        out.push(h.clone());
    }
    out
}

/// On every compiled backend (the cell is Burn tensor ops, so it runs on wgpu too).
#[test]
fn the_cell_computes_the_unstabilised_equations_without_overflow() {
    for (name, device) in devices() {
        eprintln!("{name}");
        unstabilised_equations_on(&device);
    }
}

fn unstabilised_equations_on(device: &Device) {
    let (rows, steps, input, d) = (3, 6, 5, 4);
    // A shift of 0 keeps every exponential small; 120 puts exp(ĩ) near e^120, past f32's
    // largest number (about e^88.7), where only the stabiliser keeps the cell finite.
    for shift in [0.0f32, 120.0] {
        let cell = cell(input, d, shift, device);
        let x = Tensor::<3>::random([rows, steps, input], Distribution::Normal(0.0, 1.0), device);
        let expected = reference(&cell, &x);
        let gx = cell.input.forward(x.clone());
        let mut state = None;
        for (t, want) in expected.iter().enumerate() {
            let gx_t = gx.clone().narrow(1, t, 1).reshape([rows, 4 * d]);
            let next = cell.update(gx_t, state.as_ref());
            let got = host(next.h.clone());
            for (k, (a, e)) in got.iter().zip(want).enumerate() {
                assert!(
                    (a - e).abs() < 1e-5 + 1e-4 * e.abs(),
                    "shift {shift}, step {t}, value {k}: {a} vs {e}"
                );
            }
            // The normaliser never falls below 1, so the division is safe.
            assert!(host(next.n.clone()).iter().all(|&n| n >= 1.0 - 1e-6));
            state = Some(next);
        }
        let last = host(cell.forward_final(x).h);
        let want = expected.last().unwrap();
        for (a, e) in last.iter().zip(want) {
            assert!((a - e).abs() < 1e-5 + 1e-4 * e.abs(), "final: {a} vs {e}");
        }
    }
}

/// `sum(h_final · weight)` accumulated in f64, `weight` a fixed uneven pattern.
fn loss(cell: &SLstm, x: &Tensor<3>) -> f64 {
    let h = host(cell.forward_final(x.clone()).h);
    h.iter()
        .enumerate()
        .map(|(k, v)| v * (k as f64 * 0.7).sin())
        .sum()
}

#[test]
fn gradients_match_central_differences() {
    const EPS: f64 = 1e-2;
    let device = device();
    let ad = device.clone().autodiff();
    let (rows, steps, input, d) = (2, 5, 3, 4);
    let cell0 = cell(input, d, 2.0, &device);
    let x = Tensor::<3>::random(
        [rows, steps, input],
        Distribution::Normal(0.0, 1.0),
        &device,
    );

    // Autodiff gradients of the same loss.
    // The same weights as tracked leaves on the autodiff device.
    let to_ad = |t: Tensor<2>| Param::from_tensor(Tensor::<2>::from_data(t.into_data(), &ad));
    let mut cell_ad = SLstmConfig::new(input, d).try_init(&ad).unwrap();
    cell_ad.recurrent = to_ad(cell0.recurrent.val());
    cell_ad.input.weight = to_ad(cell0.input.weight.val());
    let bias = cell0.input.bias.as_ref().unwrap().val();
    cell_ad.input.bias = Some(Param::from_tensor(Tensor::<1>::from_data(
        bias.into_data(),
        &ad,
    )));
    let x_ad = Tensor::<3>::from_data(x.clone().into_data(), &ad).require_grad();
    let h = cell_ad.forward_final(x_ad.clone()).h;
    let weight: Vec<f32> = (0..rows * d).map(|k| (k as f32 * 0.7).sin()).collect();
    let weight = Tensor::<2>::from_data(TensorData::new(weight, [rows, d]), &ad);
    let grads = (h * weight).sum().backward();
    let g_rec = host(cell_ad.recurrent.val().grad(&grads).unwrap());
    let g_w = host(cell_ad.input.weight.val().grad(&grads).unwrap());
    let g_b = host3(
        cell_ad
            .input
            .bias
            .as_ref()
            .unwrap()
            .val()
            .grad(&grads)
            .unwrap()
            .reshape([1, 1, 4 * d]),
    );
    let g_x = host3(x_ad.grad(&grads).unwrap());

    // Central differences, one number at a time, for a spread of entries of each tensor.
    let check =
        |what: &str, autodiff: &[f64], count: usize, perturb: &dyn Fn(usize, f64) -> f64| {
            for k in (0..count).step_by(3) {
                let numeric = (perturb(k, EPS) - perturb(k, -EPS)) / (2.0 * EPS);
                let err = (autodiff[k] - numeric).abs();
                assert!(
                    err <= 2e-3 + 1e-2 * numeric.abs(),
                    "{what}[{k}]: autodiff {} vs finite difference {numeric}",
                    autodiff[k]
                );
            }
        };
    let bumped2 = |t: Tensor<2>, k: usize, delta: f64| {
        let [a, b] = t.dims();
        let mut v = host(t);
        v[k] += delta;
        let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
        Tensor::<2>::from_data(TensorData::new(v, [a, b]), &device)
    };
    check("recurrent", &g_rec, d * 4 * d, &|k, delta| {
        let mut c = cell0.clone();
        c.recurrent = Param::from_tensor(bumped2(c.recurrent.val(), k, delta));
        loss(&c, &x)
    });
    check("input weight", &g_w, input * 4 * d, &|k, delta| {
        let mut c = cell0.clone();
        c.input.weight = Param::from_tensor(bumped2(c.input.weight.val(), k, delta));
        loss(&c, &x)
    });
    check("bias", &g_b, 4 * d, &|k, delta| {
        let mut c = cell0.clone();
        let b = c.input.bias.as_ref().unwrap().val().reshape([1, 4 * d]);
        c.input.bias = Some(Param::from_tensor(bumped2(b, k, delta).reshape([4 * d])));
        loss(&c, &x)
    });
    check("input", &g_x, rows * steps * input, &|k, delta| {
        let x2 = bumped2(x.clone().reshape([rows, steps * input]), k, delta)
            .reshape([rows, steps, input]);
        loss(&cell0, &x2)
    });
}

#[test]
fn forget_biases_start_spread_and_the_rest_at_zero() {
    let device = device();
    let d = 16;
    let cell = SLstmConfig::new(3, d).init(&device);
    let b = bias_of(&cell);
    let forget = &b[d..2 * d];
    assert!((forget[0] - 5.0).abs() < 1e-6 && (forget[d - 1] + 7.0).abs() < 1e-5);
    assert!(forget.windows(2).all(|w| w[1] < w[0]), "{forget:?}");
    // The power law: most units start with a short memory.
    let middle = 5.0 - 12.0 * (8.0f64 / 15.0).powf(0.3);
    assert!((forget[8] - middle).abs() < 1e-5, "{}", forget[8]);
    for (k, v) in b.iter().enumerate() {
        if !(d..2 * d).contains(&k) {
            assert_eq!(*v, 0.0, "bias {k}");
        }
    }
    assert!(host(cell.recurrent.val()).iter().all(|&v| v == 0.0));
    assert!(SLstmConfig::new(3, 0).try_init(&device).is_err());
}
