"""The techniques beyond the course: L2, dropout, mini-batches, momentum, Adam, learning-rate decay,
flips, shifts and test-time mirror averaging; their gradients, their randomness, and the solvers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from catdnn import augment
from catdnn.config import PRESETS, TrainConfig
from catdnn.errors import ConfigError
from catdnn.network import (
    backward,
    cost_from_logits,
    dropout,
    forward,
    gradient_check,
    init_params,
    l2_cost,
    predict_proba,
)
from catdnn.optim import (
    HYPERPARAMETERS,
    OPTIMIZERS,
    SCHEDULES,
    Adam,
    MiniBatches,
    Momentum,
    RMSprop,
    make_optimizer,
    seeded_generators,
)
from catdnn.solvers import DirectSolver, GramSolver, choose_solver, gram_exactness, solver_choice
from catdnn.train import Trainer, fit

RTOL = 1e-9
SMALL = (4, 5, 3)  # tiny images (H, W, C) for augmentation tests: n_x = 60


def _net(layers, seed=0, m=7):
    rng = np.random.RandomState(seed)
    X = rng.randn(layers[0], m)
    Y = (rng.rand(1, m) > 0.5).astype(float)
    params = [(W, b + rng.randn(*b.shape) * 0.1) for W, b in init_params(layers, "he", seed=seed + 1)]
    return params, X, Y


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else 0.0


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("layers", [[5, 1], [4, 3, 1], [6, 5, 4, 1], [3, 7, 2, 3, 1]])
@pytest.mark.parametrize("lambd", [0.1, 0.7, 5.0])
def test_l2_gradient_check_includes_the_cost_term(layers, lambd):
    params, X, Y = _net(layers, seed=len(layers))
    assert gradient_check(params, X, Y, lambd=lambd) < 1e-7


def test_l2_cost_is_the_course_term():
    params, X, Y = _net([4, 3, 1])
    expected = 0.7 / (2 * 7) * (np.sum(params[0][0] ** 2) + np.sum(params[1][0] ** 2))
    assert l2_cost(params, 0.7, 7) == pytest.approx(expected, rel=1e-14)
    assert l2_cost(params, 0.0, 7) == 0.0
    # and the gradient is the plain one plus λ/m·W (biases untouched)
    AL, cache = forward(params, X)
    plain = backward(params, cache, Y, AL)
    AL, cache = forward(params, X)
    reg = backward(params, cache, Y, AL, lambd=0.7)
    for (dW, db), (rW, rb), (W, _) in zip(plain, reg, params):
        np.testing.assert_allclose(rW, dW + 0.7 / 7 * W, rtol=1e-13)
        np.testing.assert_array_equal(rb, db)


@pytest.mark.parametrize("layers,keep", [([4, 3, 1], (0.5,)), ([6, 5, 4, 1], (0.8, 0.6)),
                                         ([3, 7, 2, 3, 1], (0.7, 1.0, 0.5))])
@pytest.mark.parametrize("lambd", [0.0, 0.4])
def test_dropout_gradient_check_with_a_fixed_mask(layers, keep, lambd):
    params, X, Y = _net(layers, seed=len(layers), m=9)
    _AL, cache = forward(params, X, keep_prob=keep, rng=np.random.default_rng(4))
    masks = cache.masks
    assert [mk is None for mk in masks] == [p == 1.0 for p in keep]
    assert any(mk is not None and not mk.all() for mk in masks)  # some unit really is dropped
    assert gradient_check(params, X, Y, lambd=lambd, masks=masks) < 1e-7


def test_gradient_check_catches_a_missing_mask_in_backward(monkeypatch):
    params, X, Y = _net([6, 5, 4, 1], m=9)
    _AL, cache = forward(params, X, keep_prob=(0.5, 0.5), rng=np.random.default_rng(1))
    import catdnn.network as net

    real = net.backward

    def forgetful(params, cache, Y, AL=None, **kw):  # drops the masks on the way back
        plain = net.Cache(cache)
        plain.masks = None
        return real(params, plain, Y, AL, **kw)

    monkeypatch.setattr(net, "backward", forgetful)
    assert gradient_check(params, X, Y, masks=cache.masks) > 1e-4


def test_inverted_dropout_keeps_the_expected_activation():
    A = np.ones((50, 4000))
    dropped, mask = dropout(A, 0.8, np.random.default_rng(0))
    assert set(np.unique(mask)) == {0.0, 1 / 0.8}
    assert np.mean(mask > 0) == pytest.approx(0.8, abs=0.01)
    assert dropped.mean() == pytest.approx(1.0, abs=0.01)  # inverted: the scale is kept
    same, none = dropout(A, 1.0, np.random.default_rng(0))
    assert same is A and none is None
    # masks come from the generator only: the same seed, the same units
    again = dropout(A, 0.8, np.random.default_rng(0))[1]
    np.testing.assert_array_equal(mask, again)


def test_dropout_is_off_at_prediction():
    cfg = TrainConfig(layers=(12, 6, 4, 1), keep_prob=0.5, learning_rate=0.3, iterations=30, seed=2)
    X, Y = _toy(12, 30)
    model = fit(cfg, X=X, Y=Y)
    p1, p2 = model.predict_proba(X), model.predict_proba(X)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(p1, forward(model.params, X)[0][0])


# --------------------------------------------------------------------------- optimisers
def _reference_momentum(params, grads_seq, lr, beta):
    """The course's update_parameters_with_momentum, on dicts, written out plainly."""
    P = {f"{k}{l}": params[l][i].copy() for l in range(len(params)) for i, k in enumerate("Wb")}
    v = {k: np.zeros_like(a) for k, a in P.items()}
    for grads in grads_seq:
        for l in range(len(params)):
            for i, k in enumerate("Wb"):
                key = f"{k}{l}"
                v[key] = beta * v[key] + (1 - beta) * grads[l][i]
                P[key] = P[key] - lr * v[key]
    return P


def _reference_adam(params, grads_seq, lr, beta1, beta2, eps):
    """The course's update_parameters_with_adam, on dicts, written out plainly."""
    P = {f"{k}{l}": params[l][i].copy() for l in range(len(params)) for i, k in enumerate("Wb")}
    v = {k: np.zeros_like(a) for k, a in P.items()}
    s = {k: np.zeros_like(a) for k, a in P.items()}
    for t, grads in enumerate(grads_seq, start=1):
        for l in range(len(params)):
            for i, k in enumerate("Wb"):
                key = f"{k}{l}"
                g = grads[l][i]
                v[key] = beta1 * v[key] + (1 - beta1) * g
                s[key] = beta2 * s[key] + (1 - beta2) * g**2
                v_hat = v[key] / (1 - beta1**t)
                s_hat = s[key] / (1 - beta2**t)
                P[key] = P[key] - lr * v_hat / (np.sqrt(s_hat) + eps)
    return P


def _reference_rmsprop(params, grads_seq, lr, beta2, eps):
    """The course's RMSprop (S = β2·S + (1-β2)·dW², W -= α·dW/(√S + ε)), on dicts, written out plainly."""
    P = {f"{k}{l}": params[l][i].copy() for l in range(len(params)) for i, k in enumerate("Wb")}
    S = {k: np.zeros_like(a) for k, a in P.items()}
    for grads in grads_seq:
        for l in range(len(params)):
            for i, k in enumerate("Wb"):
                key = f"{k}{l}"
                g = grads[l][i]
                S[key] = beta2 * S[key] + (1 - beta2) * g**2
                P[key] = P[key] - lr * g / (np.sqrt(S[key]) + eps)
    return P


def _grads_seq(params, n, seed=0):
    rng = np.random.default_rng(seed)
    return [[(rng.standard_normal(W.shape), rng.standard_normal(b.shape)) for W, b in params] for _ in range(n)]


@pytest.mark.parametrize("make,reference", [
    (lambda: Momentum(beta=0.9), lambda p, g: _reference_momentum(p, g, 0.05, 0.9)),
    (lambda: Momentum(beta=0.5), lambda p, g: _reference_momentum(p, g, 0.05, 0.5)),
    (lambda: Adam(), lambda p, g: _reference_adam(p, g, 0.05, 0.9, 0.999, 1e-8)),
    (lambda: Adam(beta1=0.8, beta2=0.95, epsilon=1e-4), lambda p, g: _reference_adam(p, g, 0.05, 0.8, 0.95, 1e-4)),
    (lambda: RMSprop(), lambda p, g: _reference_rmsprop(p, g, 0.05, 0.999, 1e-8)),
    (lambda: RMSprop(beta2=0.9, epsilon=1e-4), lambda p, g: _reference_rmsprop(p, g, 0.05, 0.9, 1e-4)),
    (lambda: make_optimizer(TrainConfig(optimizer="rmsprop", beta2=0.8, epsilon=1e-3)),
     lambda p, g: _reference_rmsprop(p, g, 0.05, 0.8, 1e-3)),
])
def test_optimizer_matches_the_plain_reference_step_by_step(make, reference):
    params = init_params([6, 4, 3, 1], "he", seed=2)
    start = [(W.copy(), b.copy()) for W, b in params]
    seq = _grads_seq(params, 12)
    opt = make()
    state = opt.init(params)
    for n, grads in enumerate(seq, start=1):
        opt.update(params, [(dW.copy(), db.copy()) for dW, db in grads], state, 0.05)
        expected = reference(start, seq[:n])
        for l, (W, b) in enumerate(params):
            np.testing.assert_allclose(W, expected[f"W{l}"], rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(b, expected[f"b{l}"], rtol=1e-12, atol=1e-15)
    assert state.t == 12
    # the state has the parameters' structure, layer by layer
    memory = state.v if state.v is not None else state.s
    assert [tuple(a.shape for a in layer) for layer in memory] == [(W.shape, b.shape) for W, b in params]


def test_optimizer_registry_names_are_the_config_names():
    assert list(OPTIMIZERS) == ["gd", "momentum", "rmsprop", "adam"]  # the course's order
    for name in OPTIMIZERS:
        assert OPTIMIZERS[name]().name == name
        TrainConfig(optimizer=name).validate()


def test_every_optimizer_hyperparameter_is_declared_once_and_is_a_config_setting():
    """An optimiser's fields are declared hyperparameters; TrainConfig's defaults are the declared ones,
    and make_optimizer passes the config's values through, for every optimiser."""
    default = TrainConfig()
    for h in HYPERPARAMETERS.values():
        assert getattr(default, h.name) == h.default
    for name, cls in OPTIMIZERS.items():
        declared = {f: h for f, h in HYPERPARAMETERS.items() if hasattr(cls(), f)}
        changed = {f: (h.low + h.high) / 2 for f, h in declared.items()}
        opt = make_optimizer(TrainConfig(optimizer=name, **changed))
        assert type(opt) is cls and all(getattr(opt, f) == v for f, v in changed.items())
        assert all(getattr(cls(), f) == h.default for f, h in declared.items())
    assert {f for f in HYPERPARAMETERS if hasattr(RMSprop(), f)} == {"beta2", "epsilon"}  # the course's RMSprop


def test_every_declared_hyperparameter_reaches_the_cli_the_link_the_form_and_the_search():
    from catdnn.cli import build_parser
    from catdnn.search import PARAMETERS
    from catdnn.share import PARAMS
    from ui.train_form import FORM_KEYS, TECHNIQUE_KEYS

    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    sweep = parser._subparsers._group_actions[0].choices["sweep"]
    for name in HYPERPARAMETERS:
        assert f"--{name}" in train._option_string_actions and f"--{name}" in sweep._option_string_actions
        assert PARAMS[name] == name and name in PARAMETERS
        assert f"train_{name}" in FORM_KEYS and f"train_{name}" in TECHNIQUE_KEYS


def test_rmsprop_trains_and_learns():
    X, Y = _toy(m=24)
    cfg = TrainConfig(layers=(12, 6, 1), optimizer="rmsprop", learning_rate=0.01, iterations=60, seed=2)
    t = Trainer(cfg, X, Y, cost_every=1)
    list(t.run())
    assert t.solver_name == "direct" and t.status == "finished"
    assert "RMSprop β2=0.999 ε=1e-08" in cfg.techniques()
    costs = [c for _, c in t.history]
    assert np.mean(costs[-8:]) < np.mean(costs[:8])


def test_the_gd_optimizer_run_is_the_course_run():
    X, Y = _toy()
    cfg = TrainConfig(layers=(12, 5, 1), learning_rate=0.2, iterations=40, seed=3)
    explicit = replace(cfg, optimizer="gd", l2=0.0, keep_prob=1.0, batch_size=0, schedule="constant",
                       flip=False, shift=0, tta=False)
    a, b = fit(cfg, X=X, Y=Y, solver="direct", cost_every=1), fit(explicit, X=X, Y=Y, solver="direct", cost_every=1)
    assert a.history == b.history
    for (W, bb), (W2, b2) in zip(a.params, b.params):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(bb, b2)


# --------------------------------------------------------------------------- schedules and mini-batches
def test_schedules():
    assert SCHEDULES["constant"](0.1, 50, 0.0, 1) == 0.1
    assert SCHEDULES["inverse-time"](0.1, 0, 0.5, 1) == 0.1
    assert SCHEDULES["inverse-time"](0.1, 4, 0.5, 1) == pytest.approx(0.1 / 3)
    # the course's schedule_lr_decay: α0 / (1 + d·⌊epoch/k⌋)
    assert [SCHEDULES["step"](0.1, e, 1.0, 10) for e in (0, 9, 10, 19, 20, 35)] == pytest.approx(
        [0.1, 0.1, 0.05, 0.05, 0.1 / 3, 0.025])


def test_the_loop_reports_the_scheduled_rate_per_epoch():
    X, Y = _toy(m=20)
    cfg = TrainConfig(layers=(12, 4, 1), learning_rate=0.2, iterations=12, batch_size=8, schedule="step",
                      decay=1.0, decay_every=2, seed=1)
    events = list(Trainer(cfg, X, Y).run())
    assert [e.epoch for e in events] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]  # 3 batches (8, 8, 4) per epoch
    assert [e.learning_rate for e in events] == pytest.approx([0.2] * 6 + [0.1] * 6)
    full = list(Trainer(replace(cfg, batch_size=0, schedule="inverse-time", decay_every=1, decay=0.5), X, Y).run())
    assert [e.epoch for e in full] == list(range(12))
    assert [e.learning_rate for e in full] == pytest.approx([0.2 / (1 + 0.5 * i) for i in range(12)])


def test_minibatches_cover_every_example_once_per_epoch_and_reshuffle():
    mb = MiniBatches(23, 5, np.random.default_rng(7))
    assert mb.per_epoch == 5
    epochs = {}
    for _ in range(15):
        index, epoch = mb.next()
        epochs.setdefault(epoch, []).append(index)
    assert sorted(epochs) == [0, 1, 2]
    for batches in epochs.values():
        assert [len(b) for b in batches] == [5, 5, 5, 5, 3]  # the last batch is smaller
        assert sorted(np.concatenate(batches).tolist()) == list(range(23))
    orders = [np.concatenate(b) for b in epochs.values()]
    assert not np.array_equal(orders[0], orders[1])  # reshuffled every epoch
    full = MiniBatches(23, 0, np.random.default_rng(7))
    assert full.next() == (None, 0) and full.next() == (None, 1) and full.per_epoch == 1
    assert MiniBatches(23, 23, np.random.default_rng(7)).full


def test_shuffling_is_deterministic_by_seed_and_streams_are_independent():
    def batches(seed):
        mb = MiniBatches(30, 4, seeded_generators(seed)["batches"])
        return [mb.next()[0].tolist() for _ in range(20)]

    assert batches(3) == batches(3)
    assert batches(3) != batches(4)
    X, Y = _toy(m=30)
    cfg = TrainConfig(layers=(12, 6, 3, 1), learning_rate=0.2, iterations=25, batch_size=4, seed=5)
    a = fit(cfg, X=X, Y=Y, cost_every=1)
    b = fit(cfg, X=X, Y=Y, cost_every=1)
    assert a.history == b.history  # same seed, same run
    c = fit(replace(cfg, seed=6), X=X, Y=Y, cost_every=1)
    assert a.history != c.history
    # dropout draws from its own stream: the batches (hence the labels seen) are the same with it on
    seen = {}
    for keep in (1.0, 0.5):
        t = Trainer(replace(cfg, keep_prob=keep), X, Y)
        seen[keep] = [t._batches.next()[0].tolist() for _ in range(10)]
    assert seen[1.0] == seen[0.5]


# --------------------------------------------------------------------------- augmentation
def _images(m, shape=SMALL, seed=0):
    return np.random.default_rng(seed).random((m,) + shape)


def _cols(images):
    return images.reshape(images.shape[0], -1).T  # data.flatten_images without the /255


def test_flip_mirrors_each_image_left_right():
    imgs = _images(5)
    X = _cols(imgs)
    F = augment.flip(X, SMALL)
    assert F.shape == X.shape
    np.testing.assert_array_equal(F, _cols(imgs[:, :, ::-1, :]))
    np.testing.assert_array_equal(augment.flip(F, SMALL), X)  # an involution
    W = np.random.default_rng(1).random((3, X.shape[0]))
    np.testing.assert_allclose(W @ F, augment.flip_rows(W, SMALL) @ X, rtol=1e-13)  # the Gram identity


def test_flip_works_on_the_real_image_layout():
    imgs = _images(2, (64, 64, 3))
    X = _cols(imgs)
    np.testing.assert_array_equal(augment.flip(X), _cols(imgs[:, :, ::-1, :]))


def test_shift_moves_pixels_and_lets_zeros_in():
    imgs = _images(3)
    X = _cols(imgs)
    S = augment.shift(X, dy=np.array([1, 0, -2]), dx=np.array([0, -1, 2]), image_shape=SMALL)
    assert S.shape == X.shape
    out = S.T.reshape((3,) + SMALL)
    np.testing.assert_array_equal(out[0, 1:], imgs[0, :-1])  # down by 1
    assert not out[0, 0].any()
    np.testing.assert_array_equal(out[1, :, :-1], imgs[1, :, 1:])  # left by 1
    assert not out[1, :, -1].any()
    np.testing.assert_array_equal(out[2, :-2, 2:], imgs[2, 2:, :-2])  # up by 2, right by 2
    assert not out[2, -2:].any() and not out[2, :, :2].any()
    np.testing.assert_array_equal(augment.shift(X, np.zeros(3, int), np.zeros(3, int), SMALL), X)


def test_augmentation_keeps_columns_and_labels_aligned():
    """Column j of a batch stays example j: a flip and a shift never move an image to another column,
    so the batch's labels are still right."""
    rng = np.random.default_rng(3)
    imgs = np.zeros((40,) + SMALL)
    labels = rng.random(40) < 0.5
    imgs[labels] = 1.0  # "cats" are bright, non-cats black: brightness survives any flip and small shift
    X = _cols(imgs)
    d = augment.draw(np.random.default_rng(0), 40, flips=True, max_shift=1)
    assert d.mirror.shape == (40,) and d.dy.shape == d.dx.shape == (40,)
    assert d.mirror.any() and not d.mirror.all() and set(np.unique(d.dy)) <= {-1, 0, 1}
    A = augment.apply(X, d, SMALL)
    assert A.shape == X.shape
    np.testing.assert_array_equal(A.max(axis=0) > 0, labels)
    assert augment.apply(X, augment.Draw(), SMALL) is X


def test_augmentation_draws_are_seeded():
    a = augment.draw(np.random.default_rng(5), 10, True, 3)
    b = augment.draw(np.random.default_rng(5), 10, True, 3)
    assert np.array_equal(a.mirror, b.mirror) and np.array_equal(a.dy, b.dy) and np.array_equal(a.dx, b.dx)


def test_tta_averages_the_image_and_its_mirror():
    params = init_params((12288, 4, 1), "he", seed=1)
    X = np.random.default_rng(0).random((12288, 3))
    expected = (predict_proba(params, X) + predict_proba(params, augment.flip(X))) / 2
    np.testing.assert_allclose(predict_proba(params, X, tta=True), expected, rtol=1e-15)
    assert not np.allclose(predict_proba(params, X, tta=True), predict_proba(params, X))


# --------------------------------------------------------------------------- the solvers
def _data(n_x=12288, m=30, m_test=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n_x, m)) * 0.2
    Y = (rng.random((1, m)) < 0.4).astype(np.float64)
    Xt = rng.random((n_x, m_test)) * 0.2
    Yt = (rng.random((1, m_test)) < 0.5).astype(np.float64)
    for a in (X, Y, Xt, Yt):
        a.setflags(write=False)
    return X, Y, Xt, Yt


GRAM_TECHNIQUES = {
    "l2": dict(l2=0.7),
    "dropout": dict(keep_prob=(0.8, 0.6)),
    "dropout on layer 2 only": dict(keep_prob=(1.0, 0.5)),
    "mini-batches": dict(batch_size=7),
    "momentum": dict(optimizer="momentum", beta=0.8),
    "flips": dict(flip=True),
    "inverse-time decay": dict(schedule="inverse-time", decay=0.05),
    "step decay": dict(schedule="step", decay=0.5, decay_every=3, batch_size=16),
    "tta": dict(tta=True),
    "everything": dict(l2=0.3, keep_prob=0.7, batch_size=9, optimizer="momentum", flip=True, tta=True,
                       schedule="inverse-time", decay=0.1),
    "batch norm": dict(batch_norm=True),
    "batch norm and everything": dict(batch_norm=True, l2=0.3, keep_prob=0.7, batch_size=9, optimizer="momentum",
                                      flip=True, tta=True, schedule="inverse-time", decay=0.1),
}


@pytest.fixture(scope="module")
def gram_data():
    return _data()


@pytest.mark.parametrize("technique", list(GRAM_TECHNIQUES))
def test_gram_matches_direct_for_each_technique(technique, gram_data):
    X, Y, Xt, Yt = gram_data
    cfg = TrainConfig(layers=(12288, 6, 3, 1), learning_rate=0.05, iterations=40, init="he", seed=3,
                      **GRAM_TECHNIQUES[technique])
    runs = {}
    for solver in ("direct", "gram"):
        t = Trainer(cfg, X, Y, Xt, Yt, cost_every=1, accuracy_every=10, solver=solver)
        list(t.run())
        runs[solver] = t
    d, g = runs["direct"], runs["gram"]
    assert (d.solver_name, g.solver_name) == ("direct", "gram")
    assert choose_solver("auto", 12288, 30, cfg.layers, cfg.iterations, cfg) is GramSolver
    cd, cg = np.array([c for _, c in d.history]), np.array([c for _, c in g.history])
    assert len(cd) == 40 and np.max(np.abs(cd - cg) / np.abs(cd)) < RTOL
    for (W1, b1), (W2, b2) in zip(d.params(), g.params()):
        assert _rel(W1, W2) < RTOL and _rel(b1, b2) < RTOL
    assert _rel(d._solver.proba_test(), g._solver.proba_test()) < RTOL
    assert _rel(d._solver.proba_train(), g._solver.proba_train()) < RTOL
    assert d.accuracy_history == g.accuracy_history
    plain = Trainer(replace(cfg, **{k: getattr(TrainConfig(), k) for k in GRAM_TECHNIQUES[technique]}),
                    X, Y, cost_every=1)
    list(plain.run())
    if technique != "tta":  # the technique really changed the run
        assert [c for _, c in plain.history] != [c for _, c in g.history]


def test_gram_with_l2_reports_the_regularised_cost(gram_data):
    X, Y, _, _ = gram_data
    cfg = TrainConfig(layers=(12288, 5, 1), l2=2.0, learning_rate=0.05, iterations=3, seed=1)
    params = init_params(cfg.layers, cfg.init, cfg.seed)
    AL, cache = forward(params, X)
    expected = cost_from_logits(cache[-1][1], Y) + l2_cost(params, 2.0, X.shape[1])
    cost, _ = GramSolver(init_params(cfg.layers, cfg.init, cfg.seed), X, Y, 0.05, config=cfg).step(True)
    assert cost == pytest.approx(expected, rel=1e-12)


def test_gram_on_more_examples_than_inputs_still_matches():
    X, Y, Xt, Yt = _data(n_x=60, m=70, m_test=5, seed=2)  # test predictions go through W1 itself
    cfg = TrainConfig(layers=(60, 5, 1), l2=0.2, optimizer="momentum", batch_size=16, learning_rate=0.1,
                      iterations=30, seed=1)
    runs = {}
    for solver in ("direct", "gram"):
        t = Trainer(cfg, X, Y, Xt, Yt, cost_every=1, solver=solver)
        list(t.run())
        runs[solver] = t
    assert _rel(runs["direct"]._solver.proba_test(), runs["gram"]._solver.proba_test()) < RTOL
    c1, c2 = ([c for _, c in runs[k].history] for k in ("direct", "gram"))
    assert np.max(np.abs(np.subtract(c1, c2)) / np.abs(c1)) < RTOL


@pytest.mark.parametrize("changes", [dict(flip=True), dict(shift=1), dict(tta=True)])
def test_image_techniques_need_images(changes):
    X, Y = _toy()
    with pytest.raises(ConfigError, match="64×64"):
        Trainer(TrainConfig(layers=(12, 3, 1), **changes), X, Y)


@pytest.mark.parametrize("changes, words", [
    (dict(optimizer="adam"), "Adam"),
    (dict(shift=2), "shifts"),
    (dict(optimizer="adam", flip=True, l2=0.1), "Adam"),
    (dict(optimizer="rmsprop"), "RMSprop divides each weight's step"),
])
def test_auto_takes_the_direct_solver_where_gram_is_not_exact_and_says_why(changes, words):
    cfg = replace(PRESETS["deep"], **changes)
    cls, reason = solver_choice("auto", 12288, 209, cfg.layers, cfg.iterations, cfg)
    assert cls is DirectSolver and reason.startswith("direct solver") and words in reason
    assert words in gram_exactness(cfg)
    with pytest.raises(ConfigError, match="not exact"):
        solver_choice("gram", 12288, 209, cfg.layers, cfg.iterations, cfg)
    X, Y, _, _ = _data(m=12)
    trainer = Trainer(replace(cfg, iterations=2), X, Y)
    assert trainer.solver_name == "direct" and words in trainer.solver_reason
    with pytest.raises(ConfigError, match="not exact"):
        Trainer(replace(cfg, iterations=2), X, Y, solver="gram")


@pytest.mark.parametrize("changes", [{}, *GRAM_TECHNIQUES.values()])
def test_auto_keeps_the_gram_solver_where_it_is_exact_and_says_why(changes):
    cfg = replace(PRESETS["deep"], **changes)
    cls, reason = solver_choice("auto", 12288, 209, cfg.layers, cfg.iterations, cfg)
    assert cls is GramSolver and reason.startswith("Gram solver") and "W1" in reason
    cls, reason = solver_choice("direct", 12288, 209, cfg.layers, cfg.iterations, cfg)
    assert cls is DirectSolver and "asked" in reason


def test_a_huge_training_set_still_falls_back_to_direct_with_a_reason():
    cfg = replace(PRESETS["deep"], flip=True)
    cls, reason = solver_choice("auto", 12288, 20_000, cfg.layers, cfg.iterations, cfg)
    assert cls is DirectSolver and "pay off" in reason


@pytest.mark.parametrize("solver", ["direct", "gram"])
def test_stop_and_resume_with_techniques_is_the_uninterrupted_run(solver, gram_data):
    X, Y, Xt, Yt = gram_data
    cfg = TrainConfig(layers=(12288, 6, 3, 1), learning_rate=0.05, iterations=30, init="he", seed=3,
                      **GRAM_TECHNIQUES["everything"])
    straight = Trainer(cfg, X, Y, Xt, Yt, cost_every=1, solver=solver)
    list(straight.run())
    stopped = Trainer(cfg, X, Y, Xt, Yt, cost_every=1, solver=solver)
    for event in stopped.run():
        if event.iterations_done == 11:
            break
    assert stopped.status == "stopped" and stopped.iterations_done == 11
    list(stopped.run())
    assert stopped.history == straight.history
    for (W1, b1), (W2, b2) in zip(stopped.params(), straight.params()):
        np.testing.assert_array_equal(W1, W2)
        np.testing.assert_array_equal(b1, b2)


def test_adam_and_shifts_train_on_the_direct_path():
    X, Y = _toy(m=24)
    cfg = TrainConfig(layers=(12, 6, 1), optimizer="adam", learning_rate=0.01, iterations=60, batch_size=8, seed=2)
    t = Trainer(cfg, X, Y, cost_every=1)
    list(t.run())
    assert t.solver_name == "direct" and t.status == "finished"
    costs = [c for _, c in t.history]
    assert np.mean(costs[-8:]) < np.mean(costs[:8])  # it learns


def test_train_accuracy_with_techniques_is_measured_on_the_clean_training_set():
    X, Y, Xt, Yt = _data(m=20, seed=4)
    cfg = TrainConfig(layers=(12288, 5, 1), keep_prob=0.5, batch_size=6, flip=True, tta=True,
                      learning_rate=0.05, iterations=9, seed=1)
    t = Trainer(cfg, X, Y, Xt, Yt, accuracy_every=4)
    list(t.run())
    model = t.model()
    assert model.train_accuracy == pytest.approx(np.mean((model.predict_proba(X) > 0.5) == Y[0]))
    assert model.test_accuracy == pytest.approx(np.mean((model.predict_proba(Xt) > 0.5) == Yt[0]))
    assert [i for i, _, _ in t.accuracy_history] == [0, 4, 8, 9]  # and after the last update: the model's
    assert t.accuracy_history[-1][1:] == (model.train_accuracy, model.test_accuracy)


def test_solvers_without_a_config_are_the_course_step():
    X, Y, _, _ = _data(n_x=40, m=15)
    for cls in (DirectSolver, GramSolver):
        solver = cls(init_params((40, 4, 1), "xavier", 2), X, Y, 0.1)
        cost, AL = solver.step(True)
        assert AL.shape == (1, 15) and np.isfinite(cost)


# --------------------------------------------------------------------------- model files
TECHNIQUE_CONFIG = TrainConfig(layers=(12288, 4, 3, 1), l2=0.5, keep_prob=(0.9, 0.7), batch_size=32,
                               optimizer="adam", beta1=0.85, beta2=0.99, epsilon=1e-7, schedule="step",
                               decay=0.3, decay_every=5, flip=True, shift=3, tta=True, iterations=7, seed=9)


def test_model_files_keep_the_techniques(tmp_path):
    from catdnn.model import Model
    from catdnn.model_io import load_model, save_model

    model = Model(params=init_params(TECHNIQUE_CONFIG.layers, "xavier", 1), config=TECHNIQUE_CONFIG)
    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.config == TECHNIQUE_CONFIG
    assert loaded.config.keep_prob == (0.9, 0.7)
    X = np.random.default_rng(0).random((12288, 2))
    np.testing.assert_array_equal(loaded.predict_proba(X), predict_proba(model.params, X, tta=True))
    assert TrainConfig.from_dict(TECHNIQUE_CONFIG.to_dict()) == TECHNIQUE_CONFIG


def test_older_model_files_without_the_techniques_still_load(tmp_path):
    import json

    from catdnn.model import Model
    from catdnn.model_io import load_model, save_model

    path = tmp_path / "old.npz"
    save_model(Model(params=init_params((12288, 3, 1), "small", 1), config=TrainConfig(layers=(12288, 3, 1))), path)
    with np.load(path) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["meta"]))
    meta["config"] = {k: meta["config"][k] for k in ("layers", "learning_rate", "iterations", "init", "seed")}
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    loaded = load_model(path)
    assert loaded.config == TrainConfig(layers=(12288, 3, 1))
    assert loaded.config.techniques() == []


def test_a_model_file_with_impossible_technique_settings_is_refused(tmp_path):
    import json

    from catdnn.errors import ModelFileError
    from catdnn.model import Model
    from catdnn.model_io import load_model, save_model

    path = tmp_path / "bad.npz"
    save_model(Model(params=init_params((12288, 3, 1), "small", 1), config=TrainConfig(layers=(12288, 3, 1))), path)
    with np.load(path) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["meta"]))
    meta["config"]["keep_prob"] = 7
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match="keep probability"):
        load_model(path)


# --------------------------------------------------------------------------- helpers
def _toy(n_x=12, m=30, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.rand(n_x, m)
    Y = (X[:3].sum(axis=0, keepdims=True) > 1.5).astype(float)
    return X, Y
