{{/*
Alerting rule groups, shared by the PrometheusRule (templates/prometheusrule.yaml) and the plain
rules file deploy/prometheus/tapio-rules.yaml (rendered from this by scripts/render-manifests.sh).
Expressions keep every label of the series, so they work with any agent.metricsLabels choice.
*/}}
{{- define "tapio.ruleGroups" -}}
groups:
  - name: tapio.oom
    {{- with .Values.prometheusRule.oomEvaluationInterval }}
    interval: {{ . }}
    {{- end }}
    rules:
      - alert: TapioOomPredicted
        expr: tapio_container_oom_predicted_seconds < {{ .Values.prometheusRule.oomHorizonSeconds }}
        for: {{ .Values.prometheusRule.oomPredictedFor }}
        labels:
          severity: warning
        annotations:
          summary: {{ `'Container {{ $labels.namespace }}/{{ $labels.pod }}/{{ $labels.container }} is predicted to be OOM killed'` }}
          description: {{ printf "'Tapio predicts an OOM kill in {{ $value | humanizeDuration }} (horizon %vs). Check its memory limit and growth.'" .Values.prometheusRule.oomHorizonSeconds }}
      - alert: TapioOomKilled
        expr: increase(tapio_container_oom_kills_total[5m]) > 0
        labels:
          severity: critical
        annotations:
          summary: {{ `'Container {{ $labels.namespace }}/{{ $labels.pod }}/{{ $labels.container }} was OOM killed'` }}
          description: {{ `'{{ $value | humanize }} OOM kill(s) in the last 5 minutes.'` }}
  - name: tapio.agent
    rules:
      - alert: TapioAgentLosingEvents
        expr: >-
          sum by (instance) (rate(tapio_agent_events_lost_total[5m])) > {{ .Values.prometheusRule.eventsLostPerSecond }}
          or sum by (instance) (rate(tapio_agent_ringbuf_lost_events_total[5m])) > {{ .Values.prometheusRule.eventsLostPerSecond }}
        for: {{ .Values.prometheusRule.eventsLostFor }}
        labels:
          severity: warning
        annotations:
          summary: {{ `'Tapio agent {{ $labels.instance }} is losing kernel events'` }}
          description: {{ `'{{ $value | humanize }} events/s lost: OOM kills or predictions may be missed. See docs/troubleshooting.md.'` }}
{{- end -}}
