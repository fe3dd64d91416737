# Sourced by the peer benchmarks (compare_peers.sh, keras_parity.sh): the PyTorch and
# Keras-TensorFlow venvs under build/ (benchmark dependencies, not test ones) and dptrain's
# MNIST and CIFAR-10 shards, each made once. Sets TORCH and TF to the venvs' pythons.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for v in torch tf; do
  if [ $v = torch ]; then pkgs="torch pyyaml numpy h5py" mods=torch,yaml,numpy,h5py
  else pkgs="tensorflow-cpu keras h5py pyyaml numpy" mods=tensorflow,keras,h5py,yaml,numpy; fi
  [ -x build/bench-venv-$v/bin/python ] || python3 -m venv build/bench-venv-$v
  # Installs what is missing: h5py joined the torch venv later (the airbench reference reads shards).
  build/bench-venv-$v/bin/python -c "import $mods" 2>/dev/null || build/bench-venv-$v/bin/pip install -q $pkgs
done
TORCH=build/bench-venv-torch/bin/python TF=build/bench-venv-tf/bin/python
[ -f data/mnist/mnist-test.h5 ] || { bash scripts/fetch-data.sh mnist data/raw/mnist >/dev/null;
  ./build/dptrain prepare mnist --raw data/raw/mnist --out data/mnist --shards 4 >/dev/null; }
[ -f data/cifar10/cifar10-test.h5 ] || { bash scripts/fetch-data.sh cifar10 data/raw/cifar10 >/dev/null;
  ./build/dptrain prepare cifar10 --raw data/raw/cifar10 --out data/cifar10 --shards 4 >/dev/null; }
