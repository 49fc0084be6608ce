# Deployment: Helm chart, generated k8s/ manifests, dashboard and alert rules (owner: deployment).
.PHONY: k8s k8s-check chart-test chart-readme rules-test

k8s: setup-python ## render the chart into k8s/ and regenerate the dashboard + deploy/ copies
	$(PY) -m scripts.k8s.render

k8s-check: setup-python ## fail if k8s/, deploy/ or the chart's README drifted from the chart
	$(PY) -m scripts.k8s.render --check
	$(PY) -m scripts.k8s.chart_readme --check

chart-readme: setup-python ## regenerate charts/homesec-telemetry/README.md from the `# --` comments in values.yaml
	$(PY) -m scripts.k8s.chart_readme

chart-test: setup-python ## chart lint/render/validation and drift tests
	$(PY) -m pytest -q tests/chart $(PYTEST_ARGS)

rules-test: setup-python setup-system-prometheus ## promtool check/test of the alert rules
	promtool check rules deploy/prometheus/rules.yaml
	promtool test rules deploy/prometheus/tests/*.yaml
