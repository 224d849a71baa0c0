//! The global model's two decoders: shapes, the series embedding, and that the autoregressive
//! decoder's forecast paths feed back exactly what teacher forcing feeds in training.

use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use gatecast_model::forecast::{CellType, GlobalForecasterConfig, Likelihood, Predicted, Rng};

fn batch(device: &Device) -> (Tensor<3>, Tensor<1, Int>, Tensor<3>, Tensor<3>) {
    // 3 windows, look-back 6, features [value, 2 covariates, log scale]; horizon 4.
    let inputs = Tensor::<3>::random([3, 6, 4], Distribution::Normal(0.0, 1.0), device);
    let series = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 2, 1], [3]), device);
    let future = Tensor::<3>::random([3, 4, 2], Distribution::Normal(0.0, 1.0), device);
    let scale = Tensor::<3>::from_data(TensorData::new(vec![1.0f32, 10.0, 0.5], [3, 1, 1]), device);
    (inputs, series, future, scale)
}

fn host(t: Tensor<3>) -> Vec<f64> {
    t.to_data().try_to_vec_as::<f64>().unwrap()
}

/// Ancestral sampling with a "draw" that takes each step's mean must reproduce, step by step,
/// the means teacher forcing gives when fed that same path: the fed-back value, its shift by one
/// step, its scaling and the state carried between steps all agree. Feeding back anything else
/// (the last observed value again, an unscaled value) fails from the second step on.
#[test]
fn sampled_paths_feed_back_what_teacher_forcing_feeds() {
    let device = Device::flex();
    device.seed(5);
    for cell in [CellType::Gru, CellType::Lstm] {
        let model = GlobalForecasterConfig::new(cell, 4, 8, 4, 3, Likelihood::Gaussian)
            .with_future_size(2)
            .with_num_layers(2)
            .with_dropout(0.0)
            .with_autoregressive(true)
            .try_init(&device)
            .unwrap();
        let (inputs, series, future, scale) = batch(&device);
        let paths = model
            .sample_paths(
                inputs.clone(),
                series.clone(),
                Some(future.clone()),
                scale.clone(),
                2,
                |d| d.quantiles(&[0.5], 1, 0).remove(0),
            )
            .unwrap();
        assert_eq!((paths.len(), paths[0].len(), paths[0][0].len()), (3, 2, 4));
        let path: Vec<f32> = paths
            .iter()
            .flat_map(|p| p[0].iter().map(|v| *v as f32))
            .collect();
        let target = Tensor::<3>::from_data(TensorData::new(path.clone(), [3, 4, 1]), &device);
        let Predicted::Gaussian { mean, .. } = model
            .forward(inputs, series, Some(future), scale, Some(target))
            .unwrap()
        else {
            unreachable!()
        };
        for (k, (m, p)) in host(mean).iter().zip(&path).enumerate() {
            let p = *p as f64;
            assert!(
                (m - p).abs() <= 1e-4 * (1.0 + p.abs()),
                "{cell:?} value {k}: teacher forcing {m}, path {p}"
            );
        }
        // Both paths of a window are the same when the draw is deterministic.
        assert_eq!(paths[1][0], paths[1][1]);
    }
}

#[test]
fn direct_and_autoregressive_shapes_and_the_embedding_matters() {
    let device = Device::flex();
    device.seed(9);
    let (inputs, series, future, scale) = batch(&device);
    for autoregressive in [false, true] {
        let model = GlobalForecasterConfig::new(CellType::Lstm, 4, 8, 4, 3, Likelihood::StudentT)
            .with_future_size(2)
            .with_autoregressive(autoregressive)
            .try_init(&device)
            .unwrap();
        let target = Some(Tensor::<3>::ones([3, 4, 1], &device));
        let Predicted::StudentT { loc, .. } = model
            .forward(
                inputs.clone(),
                series.clone(),
                Some(future.clone()),
                scale.clone(),
                target.clone(),
            )
            .unwrap()
        else {
            unreachable!()
        };
        assert_eq!(loc.dims(), [3, 4, 1]);
        // Another series id, same data: another forecast.
        let other = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 0, 2], [3]), &device);
        let Predicted::StudentT { loc: moved, .. } = model
            .forward(
                inputs.clone(),
                other,
                Some(future.clone()),
                scale.clone(),
                target,
            )
            .unwrap()
        else {
            unreachable!()
        };
        let diff: f32 = (loc - moved).abs().max().into_scalar::<f32>();
        assert!(
            diff > 1e-6,
            "autoregressive {autoregressive}: the series id changed nothing"
        );
    }
    // An autoregressive model cannot forecast from forward alone, and says so.
    let model = GlobalForecasterConfig::new(CellType::Gru, 4, 8, 4, 3, Likelihood::Gaussian)
        .with_future_size(2)
        .with_autoregressive(true)
        .try_init(&device)
        .unwrap();
    let err = model
        .forward(
            inputs.clone(),
            series.clone(),
            Some(future.clone()),
            scale.clone(),
            None,
        )
        .unwrap_err();
    assert!(err.to_string().contains("sample_paths"), "{err}");
    // Seeded draws: the same seed, the same paths; another seed, other paths.
    let paths = |seed: u64| {
        let mut rng = Rng::new(seed);
        model
            .sample_paths(
                inputs.clone(),
                series.clone(),
                Some(future.clone()),
                scale.clone(),
                3,
                |d| d.sample(&mut rng),
            )
            .unwrap()
    };
    assert_eq!(paths(1), paths(1));
    assert_ne!(paths(1), paths(2));
}
