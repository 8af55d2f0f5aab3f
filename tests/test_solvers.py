"""The Gram solver (catdnn.solvers) computes the direct path's iterates, and "auto" picks it wisely."""

from __future__ import annotations

import numpy as np
import pytest

from catdnn.config import TrainConfig
from catdnn.errors import ConfigError
from catdnn.network import backward, descent_step, forward, init_params, update
from catdnn.solvers import DirectSolver, GramSolver, choose_solver, gram_matrix, gram_pays_off
from catdnn.train import Trainer

RTOL = 1e-9


def _data(n_x, m, m_test=7, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n_x, m))
    Y = (rng.random((1, m)) < 0.4).astype(np.float64)
    Xt = rng.random((n_x, m_test))
    Yt = (rng.random((1, m_test)) < 0.5).astype(np.float64)
    for a in (X, Y, Xt, Yt):
        a.setflags(write=False)  # like the dataset's arrays; the solvers must not write to them
    return X, Y, Xt, Yt


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else 0.0


def _assert_params_close(p1, p2, rtol=RTOL):
    assert len(p1) == len(p2)
    for l, ((W1, b1), (W2, b2)) in enumerate(zip(p1, p2), start=1):
        assert W1.shape == W2.shape and b1.shape == b2.shape
        assert _rel(W1, W2) < rtol, f"W{l}: relative difference {_rel(W1, W2):.2e}"
        assert _rel(b1, b2) < rtol, f"b{l}: relative difference {_rel(b1, b2):.2e}"


def _run(solver, config, data, **kw):
    X, Y, Xt, Yt = data
    trainer = Trainer(config, X, Y, Xt, Yt, cost_every=1, solver=solver, **kw)
    for _ in trainer.run():
        pass
    return trainer


NETS = [
    # (layers, init, learning rate, m): shallow and deep, every init, m below and above n_x
    ((40, 1), "small", 0.5, 23),
    ((40, 7, 1), "small", 0.3, 31),
    ((40, 20, 7, 5, 1), "xavier", 0.2, 29),
    ((30, 9, 6, 4, 3, 1), "he", 0.05, 17),
    ((12, 5, 3, 1), "xavier", 0.1, 60),  # m > n_x: still exact, just not faster
    ((25, 16, 1), "he", 0.08, 40),
]


@pytest.mark.parametrize("layers,init,lr,m", NETS)
def test_gram_matches_direct_on_random_nets(layers, init, lr, m):
    data = _data(layers[0], m, seed=len(layers) + m)
    config = TrainConfig(layers=layers, init=init, learning_rate=lr, iterations=300, seed=3)
    direct = _run("direct", config, data)
    gram = _run("gram", config, data)
    assert direct.solver_name == "direct" and gram.solver_name == "gram"
    assert direct.status == gram.status == "finished"

    (it_d, c_d), (it_g, c_g) = zip(*direct.history), zip(*gram.history)
    assert list(it_d) == list(it_g) == list(range(300))
    c_d, c_g = np.array(c_d), np.array(c_g)
    assert c_d[-1] < c_d[0]  # it trained: the comparison is not between two frozen nets
    assert np.max(np.abs(c_d - c_g) / np.abs(c_d)) < RTOL
    _assert_params_close(direct.params(), gram.params())

    md, mg = direct.model(), gram.model()
    assert (md.train_accuracy, md.test_accuracy) == (mg.train_accuracy, mg.test_accuracy)
    assert _rel(direct._solver.proba_test(), gram._solver.proba_test()) < RTOL
    assert _rel(direct._solver.proba_train(), gram._solver.proba_train()) < RTOL


def test_accuracy_tracking_is_the_same_on_both_paths():
    data = _data(40, 30, m_test=11, seed=5)
    config = TrainConfig(layers=(40, 6, 3, 1), learning_rate=0.2, iterations=120, seed=2)
    d = _run("direct", config, data, accuracy_every=10)
    g = _run("gram", config, data, accuracy_every=10)
    assert d.accuracy_history == g.accuracy_history
    assert len(g.accuracy_history) == 14  # every 10th, the last, and after the last update


def test_a_stop_midway_gives_the_same_partial_params_and_can_resume():
    data = _data(40, 25, seed=9)
    config = TrainConfig(layers=(40, 8, 4, 1), learning_rate=0.2, iterations=200, seed=4)
    partial = {}
    for solver in ("direct", "gram"):
        trainer = Trainer(config, *data, cost_every=1, solver=solver)
        for event in trainer.run():
            if event.iterations_done == 77:
                break
        assert trainer.status == "stopped" and trainer.iterations_done == 77
        partial[solver] = trainer
    _assert_params_close(partial["direct"].params(), partial["gram"].params())
    model = partial["gram"].model()
    assert model.status == "stopped" and model.iterations_done == 77

    for trainer in partial.values():  # resume to the end: same as an uninterrupted run
        for _ in trainer.run():
            pass
        assert trainer.status == "finished" and trainer.iterations_done == 200
    straight = _run("direct", config, data)
    _assert_params_close(straight.params(), partial["gram"].params())
    _assert_params_close(straight.params(), partial["direct"].params())
    assert [i for i, _ in partial["gram"].history] == list(range(200))


def test_gram_solver_leaves_inputs_alone_and_returns_copies():
    X, Y, Xt, _ = _data(20, 15, seed=1)
    X_before = X.copy()
    params = init_params((20, 4, 1), "xavier", 1)
    W1_0 = params[0][0].copy()
    solver = GramSolver(params, X, Y, 0.1, Xt)
    for _ in range(5):
        solver.step(need_cost=False)
    assert np.array_equal(X, X_before)
    p = solver.params()
    assert not np.array_equal(p[0][0], W1_0)  # W1 moved ...
    p[0][0][:] = 0.0  # ... and what we got is a copy
    p[1][0][:] = 0.0
    again = solver.params()
    assert np.abs(again[0][0]).sum() > 0 and np.abs(again[1][0]).sum() > 0
    solver.step(need_cost=False)
    assert not np.array_equal(solver.params()[0][0], again[0][0])  # rebuilt after a step


def test_step_reports_the_cost_only_when_asked_and_before_the_update():
    X, Y, _, _ = _data(20, 15, seed=2)
    for cls in (DirectSolver, GramSolver):
        solver = cls(init_params((20, 5, 1), "xavier", 7), X, Y, 0.1)
        cost, AL = solver.step(need_cost=False)
        assert cost is None and AL.shape == (1, 15)
        before = solver.proba_train()
        cost, AL = solver.step(need_cost=True)
        assert np.allclose(AL[0], before, rtol=1e-12)
        p = np.clip(before, 1e-300, 1 - 1e-16)
        expected = -np.mean(Y[0] * np.log(p) + (1 - Y[0]) * np.log(1 - p))
        assert cost == pytest.approx(expected, rel=1e-9)


def _exploding():
    X, Y, _, _ = _data(30, 20, seed=3)
    return X * 1e100, Y  # inputs so large that the logits overflow within two steps


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_is_detected_at_the_same_iteration_on_both_paths():
    X, Y = _exploding()
    config = TrainConfig(layers=(30, 10, 1), init="he", learning_rate=1.0, iterations=300, seed=1)
    runs = [_run(solver, config, (X, Y, None, None)) for solver in ("direct", "gram")]
    assert [t.status for t in runs] == ["diverged", "diverged"]
    assert runs[0].iterations_done == runs[1].iterations_done
    (i0, c0), (i1, c1) = zip(*runs[0].history), zip(*runs[1].history)
    assert i0 == i1 and np.allclose(c0, c1, rtol=RTOL)
    assert "smaller learning rate" in runs[1].message


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_auto_avoids_gram_when_the_gram_matrix_would_overflow():
    X, Y, _, _ = _data(30, 20, seed=3)
    X = X * 1e160  # XᵀX overflows although W1·X does not
    config = TrainConfig(layers=(30, 10, 1), init="he", learning_rate=1e-300, iterations=3, seed=1)
    trainer = Trainer(config, X, Y)
    assert trainer.solver_name == "direct"
    with pytest.raises(ConfigError, match="overflow"):
        Trainer(config, X, Y, solver="gram")


def test_descent_step_is_bitwise_the_textbook_step():
    """The direct solver's step is forward + backward + update, bit for bit (the cost only added)."""
    X, Y, _, _ = _data(30, 21, seed=4)
    fused = init_params((30, 8, 5, 1), "xavier", 2)
    plain = [(W.copy(), b.copy()) for W, b in fused]
    for _ in range(25):
        AL, cache = forward(plain, X)
        update(plain, backward(plain, cache, Y, AL), 0.1)
        cost, AL2 = descent_step(fused, X, Y, 0.1, need_cost=True)
        assert np.array_equal(AL, AL2)
    for (W, b), (W2, b2) in zip(plain, fused):
        assert np.array_equal(W, W2) and np.array_equal(b, b2)


# --------------------------------------------------------------------------- the course's step (issue 18 §3)
@pytest.mark.parametrize("layers", [(40, 7, 1), (40, 20, 7, 5, 1), (30, 9, 6, 4, 3, 1)])
def test_the_course_step_gives_the_general_steps_iterates(layers):
    """The Gram solver's step on all examples with plain descent (the course's run) takes a path of its own, in
    reused arrays and with each bias as a column of its weights; a step given the same full batch explicitly
    (``Batch()``) takes the general one. The same costs, outputs and parameters to 1e-12, also when a prediction
    or the statistics come between two steps (Z[1] measured by them is shared with the next step)."""
    from catdnn.solvers import Batch

    X, Y, Xt, _ = _data(layers[0], 33, seed=len(layers))
    course, general = (GramSolver(init_params(layers, "xavier", 5), X, Y, 0.3, Xt) for _ in range(2))
    costs = []
    for i in range(60):
        if i % 7 == 3:  # a prediction and the statistics at these parameters, before the step
            assert _rel(course.proba_train(), general.proba_train()) < 1e-12
            s1, s2 = course.layer_stats(i), general.layer_stats(i)
            assert s1.zero_fractions == s2.zero_fractions
            np.testing.assert_allclose(s1.grad_norms, s2.grad_norms, rtol=1e-12)
        c1, AL1 = course.step(i % 5 == 0)
        AL1 = AL1.copy()  # (the course step's output lives in an array the next step reuses)
        c2, AL2 = general.step(i % 5 == 0, Batch())
        assert (c1 is None) == (c2 is None) == (i % 5 != 0)
        costs.append((c1, c2))
        assert _rel(AL1, AL2) < 1e-12
    c1, c2 = np.array([c for c in costs if c[0] is not None]).T
    assert c1[-1] < c1[0] and np.max(np.abs(c1 - c2) / c2) < 1e-12  # it trained, and the costs agree
    _assert_params_close(course.params(), general.params(), rtol=1e-12)
    assert _rel(course.proba_test(), general.proba_test()) < 1e-12


@pytest.mark.parametrize("settings", [dict(l2=0.1), dict(optimizer="momentum"), dict(keep_prob=0.8),
                                      dict(batch_norm=True), dict(flip=True), dict(layers=(40, 1)),
                                      dict(batch_size=8)])
def test_other_runs_take_the_general_step(settings, monkeypatch):
    """Only the course's kind of step takes the course step: any technique, a single layer or mini-batches go
    the general way (and still match the direct path)."""
    X, Y, Xt, Yt = _data(40, 24, seed=8)
    config = TrainConfig(**{"layers": (40, 6, 1), "learning_rate": 0.1, "iterations": 20, "seed": 3, **settings})
    if config.flip:  # flips need 64×64×3 images
        X, Xt = (np.random.default_rng(1).random((12288, k)) for k in (24, 7))
        config = TrainConfig(**{**config.to_dict(), "layers": (12288, 6, 1)})
    taken, course_step = [], GramSolver._course_step

    def spy(self, *args):
        taken.append(args)
        return course_step(self, *args)

    monkeypatch.setattr(GramSolver, "_course_step", spy)
    trainer = _run("gram", config, (X, Y, Xt, Yt))
    assert trainer.status == "finished" and taken == []
    plain = _run("gram", TrainConfig(layers=(40, 6, 1), learning_rate=0.1, iterations=3, seed=3), _data(40, 24))
    assert len(taken) == 3 and plain.iterations_done == 3


def test_a_runs_end_predicts_on_the_test_set_with_the_models_own_weights():
    """Once W1 is built for the current parameters (the model's parameters, at a run's end), the Gram solver's
    test prediction is the shared prediction with those weights, instead of building the cross-Gram matrix;
    before that, and after the next step, the cross-Gram's prediction, equal to rounding."""
    from catdnn.network import predict_proba

    X, Y, Xt, _ = _data(50, 30, m_test=9, seed=4)
    solver = GramSolver(init_params((50, 7, 3, 1), "xavier", 2), X, Y, 0.2, Xt)
    for _ in range(20):
        solver.step(False)
    params = solver.params()
    np.testing.assert_array_equal(solver.proba_test(), predict_proba(params, Xt))
    solver.step(False)
    by_gram = solver.proba_test()  # the cross-Gram, built now, serves the next predictions
    np.testing.assert_allclose(by_gram, predict_proba(solver.params(), Xt), rtol=1e-12)
    np.testing.assert_array_equal(solver.proba_test(), by_gram)


# --------------------------------------------------------------------------- the automatic choice
DEEP = (12288, 20, 7, 5, 1)
TWO = (12288, 7, 1)


@pytest.mark.parametrize("layers", [DEEP, TWO])
def test_auto_picks_gram_for_the_course(layers):
    assert choose_solver("auto", 12288, 209, layers) is GramSolver
    assert choose_solver("auto", 12288, 209, layers, iterations=2500) is GramSolver
    trainer = Trainer(TrainConfig(layers=layers), np.zeros((12288, 209)), np.zeros((1, 209)))
    assert trainer.solver_name == "gram"


def test_auto_falls_back_to_direct_when_the_gram_matrix_does_not_pay():
    # far more examples than features: B·G (n_1·m²) costs more than W1·X (n_1·n_x·m)
    assert choose_solver("auto", 100, 5000, (100, 10, 1)) is DirectSolver
    # the Gram matrix would not fit the memory budget
    assert choose_solver("auto", 12288, 50_000, DEEP) is DirectSolver
    # building G (n_x·m²) is not repaid by a handful of iterations
    assert choose_solver("auto", 12288, 5000, DEEP, iterations=3) is DirectSolver
    assert choose_solver("auto", 12288, 5000, DEEP, iterations=2500) is GramSolver


@pytest.mark.parametrize("iterations", [1, 10, 100, 2500, None])
def test_the_gram_rule_never_comes_back_once_m_is_too_large(iterations):
    """For a fixed run length, once m is too large for the Gram path it stays too large."""
    picks = [gram_pays_off(12288, m, DEEP, iterations) for m in (50, 209, 1000, 5000, 20000, 24576, 24577, 40000)]
    assert picks == sorted(picks, reverse=True)  # True ... True, False ... False
    assert not picks[-1]  # beyond 2·n_x never


def test_named_solvers_and_unknown_names():
    assert choose_solver("direct", 12288, 209, DEEP) is DirectSolver
    assert choose_solver("gram", 12288, 50_000, DEEP) is GramSolver  # asked for by name: obeyed
    with pytest.raises(ConfigError, match="unknown solver"):
        choose_solver("bogus", 12288, 209, DEEP)


def test_gram_computes_in_float64_whatever_the_input_dtype():
    X, Y, Xt, _ = _data(30, 20, seed=6)
    X32 = X.astype(np.float32)
    config = TrainConfig(layers=(30, 6, 1), learning_rate=0.3, iterations=100, seed=5)
    d = _run("direct", config, (X32, Y, None, None))
    g = _run("gram", config, (X32, Y, None, None))
    _assert_params_close(d.params(), g.params())
    assert g._solver._G.dtype == np.float64


@pytest.mark.parametrize("m,block", [(5, 8), (17, 8), (24, 8), (25, 4)])
def test_gram_matrix_in_blocks_is_xtx(m, block):
    X = np.random.default_rng(m).random((13, m))
    G = gram_matrix(X, block=block)
    assert G.shape == (m, m)
    assert np.allclose(G, X.T @ X, rtol=1e-13, atol=0)
    assert np.array_equal(G, G.T)  # exactly symmetric, as XᵀX is



def test_every_solver_keeps_the_one_contract(dataset):
    from dataclasses import replace

    from catdnn.cnn import init_cnn
    from catdnn.config import PRESETS
    from catdnn.solvers import CnnSolver, Solver

    X, Y, Xt = dataset.train.X, dataset.train.Y, dataset.test.X
    deep, small_cnn = PRESETS["deep"], replace(PRESETS["cnn"], arch="in16,conv4,dense4")
    solvers = [cls(init_params(deep.layers, deep.init, 1), X, Y, 0.0075, Xt, config=deep)
               for cls in (DirectSolver, GramSolver)]
    solvers.append(CnnSolver(init_cnn(small_cnn.parsed_arch(), "he", 1, np.float32), X, Y, 0.002, Xt, config=small_cnn))
    for solver in solvers:
        assert isinstance(solver, Solver)
        cost, AL = solver.step(True)
        assert np.isfinite(cost) and AL.shape == (1, X.shape[1])
        assert solver.proba_train().shape == (X.shape[1],) and solver.proba_test().shape == (Xt.shape[1],)
        assert len(solver.params()) == len(solver.params(copy=False))
    assert [s.name for s in solvers] == ["direct", "gram", "cnn"]
    assert solvers[2].layer_stats(0) is None and solvers[0].layer_stats(0).iteration == 0


# --------------------------------------------------------------------------- shared work within a step (issue 18)
@pytest.mark.parametrize("batch_norm", [False, True])
def test_measuring_accuracies_changes_no_iterate_and_matches_separate_predictions(batch_norm):
    """The Gram solver shares Z[1] between the train accuracy's prediction and the next step, and predicts on
    the test and training images in one pass: the iterates are those of a run that measures nothing, and the
    accuracies those of separate predictions."""
    data = _data(40, 30, m_test=11, seed=6)
    config = TrainConfig(layers=(40, 7, 5, 1), learning_rate=0.1, iterations=60, seed=2, batch_norm=batch_norm)
    quiet = _run("gram", config, data)
    measured = _run("gram", config, data, accuracy_every=1)
    assert quiet.history == measured.history  # bit for bit
    for (W, b), (W2, b2) in zip(quiet.params(), measured.params()):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    solver = measured._solver
    test_proba, train_proba = solver.proba_test(), solver.proba_train()  # the pair, then the cached half
    fresh = GramSolver(quiet.params(), *data[:2], 0.1, data[2], config=config, bn=quiet.batch_norm())
    np.testing.assert_allclose(train_proba, fresh.proba_train(), rtol=1e-12)
    np.testing.assert_allclose(test_proba, fresh.proba_test(), rtol=1e-12)
    assert measured.accuracy_history[-1][1:] == (quiet.model().train_accuracy, quiet.model().test_accuracy)
