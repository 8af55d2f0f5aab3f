"""catdnn dashboard: `streamlit run dashboard.py`. Page config, navigation, and the Home page."""

import streamlit as st

import ui
from catdnn import evaluate, plots
from catdnn.threads import limit_blas_threads

# One BLAS thread per process: every browser session trains on a thread of this one process, and
# concurrent trainings then share the cores instead of oversubscribing them (catdnn/threads.py).
limit_blas_threads()  # idempotent: cheap on every rerun


def home():
    st.title("catdnn: cat or not cat?")
    st.markdown(
        "A deep neural network written from scratch in NumPy, as in the deeplearning.ai exercise "
        "*Deep Neural Network – Application*. **Train** it live and watch the cost fall, browse its "
        "**Misclassified** test images, and **Predict** on your own photos."
    )
    ds = ui.dataset_ui()
    counts = {
        "train": evaluate.class_counts(ds.train.labels, ds.classes),
        "test": evaluate.class_counts(ds.test.labels, ds.classes),
    }
    st.header("The dataset at a glance")
    left, right = st.columns([2, 3])
    with left:
        st.markdown(
            f"**{ds.train.m}** training and **{ds.test.m}** test images, each 64×64 pixels in colour, "
            f"labelled *cat* or *non-cat*.\n\n"
            + "\n".join(
                f"- {split}: {c['cat']} cats, {c['non-cat']} non-cats" for split, c in counts.items()
            )
        )
        baseline = evaluate.constant_accuracy(ds.test.labels, answer=1)
        st.metric(
            "Always answering “cat”", f"{baseline:.2f}",
            help="Accuracy on the test set of a 'model' that ignores the image.", width="content",
        )
        st.caption(
            f"The test set is {baseline:.0%} cats, so a network must beat **{baseline:.2f}** test "
            "accuracy to have learned anything."
        )
    with right:
        st.plotly_chart(plots.class_counts_figure(counts), key="home_counts", config={"displayModeBar": False})

    st.subheader("Sample training images")
    cats = [i for i in range(ds.train.m) if ds.train.labels[i] == 1][:6]
    others = [i for i in range(ds.train.m) if ds.train.labels[i] == 0][:6]
    order = [i for pair in zip(cats, others) for i in pair]
    ui.draw_image_grid([(ds.train.images[i], f"#{i}: **{ds.classes[ds.train.labels[i]]}**") for i in order])

    st.header("The network")
    st.markdown(
        "*L* layers: *L − 1* layers of LINEAR → RELU, then LINEAR → SIGMOID, which outputs "
        "P(cat). Each column of $X$ is one image flattened to $64·64·3 = 12288$ numbers in [0, 1]; "
        "$m$ is the number of images."
    )
    forward, cost = st.columns(2)
    with forward:
        st.markdown("**Forward propagation**, for $l = 1 … L$, with $A^{[0]} = X$:")
        st.latex(r"""\begin{aligned}
            Z^{[l]} &= W^{[l]} A^{[l-1]} + b^{[l]} \\
            A^{[l]} &= \mathrm{ReLU}(Z^{[l]}) \quad (l < L) \\
            A^{[L]} &= \sigma(Z^{[L]}) = \hat Y
            \end{aligned}""")
    with cost:
        st.markdown("**Cost**: binary cross-entropy, with $a^{(i)} = A^{[L](i)}$:")
        st.latex(r"""\begin{aligned}
            J = -\frac{1}{m} \sum_{i=1}^{m} \Big( & y^{(i)} \log a^{(i)} \\
            & + (1 - y^{(i)}) \log\big(1 - a^{(i)}\big) \Big)
            \end{aligned}""")
    backward, update = st.columns(2)
    with backward:
        st.markdown("**Backward propagation**, for $l = L … 1$:")
        st.latex(r"""\begin{aligned}
            dZ^{[L]} &= A^{[L]} - Y \\
            dZ^{[l]} &= dA^{[l]} \odot \mathrm{ReLU}'(Z^{[l]}) \quad (l < L) \\
            dW^{[l]} &= \tfrac{1}{m}\, dZ^{[l]} A^{[l-1]T} \\
            db^{[l]} &= \tfrac{1}{m} \textstyle\sum_{i=1}^{m} dZ^{[l](i)} \\
            dA^{[l-1]} &= W^{[l]T} dZ^{[l]}
            \end{aligned}""")
    with update:
        st.markdown(r"**Update**: gradient descent with learning rate $\alpha$:")
        st.latex(r"""\begin{aligned}
            W^{[l]} &:= W^{[l]} - \alpha \, dW^{[l]} \\
            b^{[l]} &:= b^{[l]} - \alpha \, db^{[l]}
            \end{aligned}""")
    st.info(
        "The course's two networks: **two-layer** [12288, 7, 1] reaches 0.72 test accuracy and "
        "**deep** [12288, 20, 7, 5, 1] reaches 0.80, both after 2500 iterations at α = 0.0075. "
        "Try them on the **Train** page.",
        icon=":material/model_training:",
    )


# An emoji icon is drawn by the browser; a ":material/…:" page icon makes every visitor's browser
# fetch it from fonts.gstatic.com, and nothing should leave the machine (SECURITY.md).
st.set_page_config(page_title="catdnn", page_icon="🐱", layout="wide")
page = st.navigation(
    [
        st.Page(home, title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("app_pages/misclassified.py", title="Misclassified", icon=":material/image_search:"),
        st.Page("app_pages/inside.py", title="Inside the network", icon=":material/neurology:"),
        st.Page("app_pages/predict.py", title="Predict", icon=":material/photo_camera:"),
    ]
)
# Drawn before the page runs: a page that ends with st.stop() (no model yet, no dataset) would
# otherwise cut it off.
model = ui.current_model()
st.sidebar.caption(f"Current model: {ui.model_label(model)}" if model else "No model trained yet.")
page.run()
