"""The TensorFlow flavor: a tf.data.Dataset with its signature, and a Keras PyDataset for model.fit."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.ml.conftest import IMAGES, SIZE, labelled_pixels


def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.05), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


@pytest.mark.parametrize(
    "strategy",
    [
        "lazy",
        # The quick selection trains once; the other strategies share all but the fetching.
        pytest.param("background", marks=pytest.mark.slow(reason="another fetch strategy, same training")),
        pytest.param("preload", marks=pytest.mark.slow(reason="another fetch strategy, same training")),
    ],
)
def test_fit_a_keras_model_from_a_query_with_each_strategy(images_source, strategy, tmp_path):
    result = images_source[images_source["label"] >= 0].select("label").all()
    batches = result.as_ml_dataloader(
        "tensorflow",
        metadata_columns=["label"],
        strategy=strategy,
        savedir=tmp_path,
        progress=False,
        batch_size=4,
        shuffle=True,
        seed=1,
    )
    assert isinstance(batches, keras.utils.PyDataset) and len(batches) == 3
    history = tiny_model().fit(batches, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and all(np.isfinite(history.history["loss"]))


def test_tf_data_dataset_has_the_right_signature_and_trains(images_source, tmp_path):
    result = images_source.order_by("path").all()
    dataset = result.as_ml_dataset(
        "tensorflow", metadata_columns=["label", "score", "flag"], savedir=tmp_path, progress=False
    )
    assert isinstance(dataset, tf.data.Dataset)
    image_spec, label_spec, score_spec, flag_spec = dataset.element_spec
    assert image_spec == tf.TensorSpec((None, None, 3), tf.uint8)
    assert (label_spec.dtype, score_spec.dtype, flag_spec.dtype) == (tf.int64, tf.float32, tf.bool)
    assert label_spec.shape == () == score_spec.shape
    items = list(dataset.as_numpy_iterator())
    assert len(items) == IMAGES and np.array_equal(items[3][0], labelled_pixels(3)) and items[3][1] == 1
    pairs = dataset.map(lambda image, label, score, flag: (image, label)).batch(4)
    history = tiny_model().fit(pairs, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])


def test_pydataset_ends_with_a_correct_partial_batch(local_images):
    result = local_images.order_by("path").all()
    dataset = result.as_ml_dataset("tensorflow", metadata_columns=["label", "score"])
    batches = result.as_ml_dataloader(dataset, batch_size=4)
    assert len(batches) == 3
    shapes = [tuple(column.shape for column in batches[i]) for i in range(3)]
    assert shapes == [((4, SIZE, SIZE, 3), (4,), (4,))] * 2 + [((2, SIZE, SIZE, 3), (2,), (2,))]
    last_images, last_labels, last_scores = batches[2]
    assert np.array_equal(last_images[1], labelled_pixels(9)) and last_labels.tolist() == [0, 1]
    assert last_labels.dtype == np.int64 and last_scores.dtype == np.float32
    with pytest.raises(IndexError):
        batches[3]
    assert sum(len(batches[i][1]) for i in range(len(batches))) == IMAGES
