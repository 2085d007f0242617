"""segdeploy bench: interleaved latency measurement of every backend, with machine facts and plots."""
