import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderCharts } from './chart.ts';

describe('renderCharts', () => {
  const svg = renderCharts([
    {
      title: 'Throughput',
      unit: 'messages/s',
      categories: ['reused', 'one per connection'],
      series: [
        { name: 'mailfleet', color: '#1f77b4', values: [2400, 800] },
        { name: 'Postfix', color: '#ff7f0e', values: [1000, 600] },
      ],
    },
  ]);
  test('draws one bar per series and category, scaled to a round maximum', () => {
    const bars = [
      ...svg.matchAll(/<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" fill="(#[0-9a-f]+)"/g),
    ];
    // four bars, then the two legend swatches
    assert.equal(bars.length, 6);
    assert.deepEqual(
      bars.slice(4).map((b) => b[2]),
      ['14', '14'],
    );
    // The axis maximum is 2500, so 2400 is 96% of the plot height (210 px) and 1000 is 40%.
    assert.equal(Number(bars[0]![2]), 201.6);
    assert.equal(Number(bars[1]![2]), 84);
  });
  test('labels the values, categories and legend', () => {
    for (const text of [
      '2,400',
      '1,000',
      'reused',
      'one per connection',
      'mailfleet',
      'Postfix',
      'Throughput',
    ]) {
      assert.ok(svg.includes(`>${text}<`), `missing ${text}`);
    }
  });
  test('escapes text', () => {
    const out = renderCharts([
      { title: 'a<b', unit: 'u', categories: ['x&y'], series: [{ name: 'n', color: '#000', values: [1] }] },
    ]);
    assert.ok(out.includes('a&lt;b') && out.includes('x&amp;y'));
  });
});
