"""catdnn dashboard: `streamlit run dashboard.py`. The entry script and the Home page.

A `pages/` folder next to this script makes Streamlit list its scripts in the sidebar, in the order
of their number prefixes (`1_Train.py` shows as "Train"); this page shows as "dashboard".
"""

import streamlit as st

from catdnn import evaluate
from ui import page_setup
from ui.dataset import dataset_ui
from ui.figures import class_counts_figure
from ui.widgets import draw_image_grid

page_setup()
st.title("catdnn: cat or not cat?")
st.markdown(
    "A deep neural network written from scratch in NumPy, as in the deeplearning.ai exercise "
    "*Deep Neural Network – Application*. **Train** it live and watch the cost fall, browse its "
    "**Misclassified** test images, look **Inside the network**, and **Predict** on your own photos."
)
ds = dataset_ui()
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
    train_cats = evaluate.constant_accuracy(ds.train.labels, answer=1)
    best, answer = (baseline, "cat") if baseline >= 0.5 else (1 - baseline, "non-cat")
    common = 1 if train_cats > 0.5 else 0  # the training set's most common answer
    st.caption(
        f"**{best:.2f}** is the best constant answer on the test set (always “{answer}”): the test set is "
        f"{baseline:.0%} cats, the training set {train_cats:.0%}. A network that learned only the training set's "
        f"most common answer (“{ds.classes[common]}”) scores "
        f"{evaluate.constant_accuracy(ds.test.labels, answer=common):.2f} on the test set, so test accuracy alone "
        "says little here: balanced accuracy (0.50 for any constant answer) and AUC (0.50 for a ranking by chance) "
        "say whether a network has learned."
    )
with right:
    st.plotly_chart(class_counts_figure(counts), key="home_counts", config={"displayModeBar": False})

st.subheader("Sample training images")
cats = [i for i in range(ds.train.m) if ds.train.labels[i] == 1][:6]
others = [i for i in range(ds.train.m) if ds.train.labels[i] == 0][:6]
order = [i for pair in zip(cats, others) for i in pair]
draw_image_grid([(ds.train.images[i], f"#{i}: **{ds.classes[ds.train.labels[i]]}**") for i in order])

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
    "Try them on the **Train** page, or watch one iteration of these equations with the real numbers, "
    "one click at a time, on the **Step** page.",
    icon=":material/model_training:",
)
