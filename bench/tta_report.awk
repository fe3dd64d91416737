# Reads "Epoch test: epoch E - accuracy: A - loss: L - training time T s - since start W s"
# lines (dptrain's eval.test_every_epoch, and bench/peers/airbench_torch.py) and prints, for each
# of the comma-separated targets, the first epoch at or above it with its training time (the sum
# of epoch times) and wall time since start, or that it was not reached; then the final accuracy.
# -v targets=0.89,0.90 [-v cpu=NAME] [-v total=SECONDS: the whole command]
BEGIN { n = split(targets, want, ",") }
/^Epoch test:/ {
  e = $4; a = $7; t = $14; w = $19; last = a; epochs = e
  for (i = 1; i <= n; ++i)
    if (!(i in at) && a + 0 >= want[i] + 0) { at[i] = e; train[i] = t; wall[i] = w }
}
END {
  if (cpu != "") printf "CPU: %s\n", cpu
  for (i = 1; i <= n; ++i)
    if (i in at) printf "reached %s at epoch %s: %.1f s of training, %.1f s since start\n", want[i], at[i], train[i], wall[i]
    else printf "did NOT reach %s\n", want[i]
  if (total != "") printf "final test accuracy %s after %s epochs; whole command %.1f s\n", last, epochs, total
  else printf "final test accuracy %s after %s epochs\n", last, epochs
}
