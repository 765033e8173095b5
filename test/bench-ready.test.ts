import { agentBound, histogramTotals, phasesOf, readyBreakdown, readySummary } from '../bench/dataplane-ready';

const probe = (replyMs: number) => ({ publishedAt: 1_000_000, attemptMs: 5.2, connectedMs: 5.7, replyMs, attempts: 6 });

describe('bench:dataplane pod readiness helpers', () => {
  it('finds the pod bound line of that IP at or after the event, skipping other IPs, earlier bindings and partial lines', () => {
    const log = [
      JSON.stringify({ ts: new Date(999_000).toISOString(), msg: 'pod bound', ip: '10.1.0.5', sinceEventMs: 9 }), // an earlier pod with the same IP
      JSON.stringify({ ts: new Date(1_000_004).toISOString(), msg: 'pod bound', ip: '10.1.0.6', sinceEventMs: 8 }),
      '{"ts":"broken", "msg":"pod bound", "ip":"10.1.0.5"',
      JSON.stringify({ ts: new Date(1_000_005).toISOString(), msg: 'pod bound', ip: '10.1.0.5', sinceEventMs: 4.5, waitedMs: 0.1, routesMs: 0.4, nftMs: 3.5 }),
    ].join('\n');
    expect(agentBound(log, '10.1.0.5', 1_000_000)).toEqual({ at: 1_000_005, sinceEventMs: 4.5, waitedMs: 0.1, routesMs: 0.4, nftMs: 3.5 });
    expect(agentBound(log, '10.1.0.7', 1_000_000)).toBeUndefined();
  });

  it('splits event -> reply into delivery, agent phases, probe step, handshake and PING', () => {
    const p = phasesOf({ pod: 'p', probe: probe(6.3), agent: { at: 1_000_005, sinceEventMs: 4.5, waitedMs: 0.1, routesMs: 0.4, nftMs: 3.5 } })!;
    expect(p.totalMs).toBe(6.3);
    expect(p.boundMs).toBe(5);
    expect(p.deliveryMs).toBeCloseTo(0.5);
    expect(p.agentOtherMs).toBeCloseTo(0.5);
    expect(p.probeStepMs).toBeCloseTo(0.2);
    expect(p.handshakeMs).toBeCloseTo(0.5);
    expect(p.pingMs).toBeCloseTo(0.6);
    expect(phasesOf({ pod: 'p' })).toBeUndefined();
  });

  it('a pod that never answered makes the max never (Infinity), so the target cannot pass; control: all answered', () => {
    expect(readySummary({ samples: [{ pod: 'a', probe: probe(4) }, { pod: 'b' }, { pod: 'c', probe: probe(6) }] })).toMatchObject({ medianMs: 6, maxMs: Infinity });
    expect(readySummary({ samples: [{ pod: 'a', probe: probe(4) }, { pod: 'c', probe: probe(6) }] })).toMatchObject({ medianMs: 5, maxMs: 6 });
    expect(readyBreakdown(1, { samples: [{ pod: 'a', probe: probe(4) }, { pod: 'b' }] })[0]).toContain('(1 never answered)');
  });

  it('reads an unlabelled histogram\'s sum and count from /metrics text', () => {
    const text = '# TYPE x_seconds histogram\nx_seconds_bucket{le="0.005"} 3\nx_seconds_sum 0.012\nx_seconds_count 3\n';
    expect(histogramTotals(text, 'x_seconds')).toEqual({ sum: 0.012, count: 3 });
    expect(histogramTotals(text, 'y_seconds')).toBeUndefined();
  });
});
