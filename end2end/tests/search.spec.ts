import { test, expect } from './fixtures';
import { open, snap } from './helpers';

// On the demo catalog (27 products: tea things, outdoor gear, paper goods).

test('search from the header, then filter, sort, and clear the filters', async ({ page }, testInfo) => {
  await open(page, '/');
  await page.getByTestId('search-input').fill('tea');
  await page.getByTestId('search-input').press('Enter');
  await expect(page).toHaveURL(/\/search\?q=tea$/);
  await expect(page.getByTestId('results-heading')).toHaveText('Results for “tea”');
  const titles = page.getByTestId('product-card').locator('.title');
  await expect(titles.first()).toContainText(/tea/i);
  const count = await titles.count();
  expect(count).toBeGreaterThan(3);
  // Title matches rank above description matches ("Earl Grey … black tea").
  await expect(page.getByTestId('product-card').last()).toBeVisible();
  await snap(page, testInfo, 'search-results');

  // In stock only, cheapest first: a plain GET form.
  await page.getByTestId('filter-in-stock').check();
  await page.getByTestId('filter-sort').selectOption('price_asc');
  await page.getByTestId('apply-filters').click();
  await expect(page).toHaveURL(/in_stock=1/);
  await expect(page).toHaveURL(/sort=price_asc/);
  const prices = (await page.getByTestId('product-card').locator('.price').allTextContents()).map((p) => Number(p.replace('$', '')));
  expect(prices.length).toBeGreaterThan(1);
  expect([...prices].sort((a, b) => a - b)).toEqual(prices);
  await expect(page.getByTestId('product-card').filter({ hasText: 'Oolong Sampler' })).toHaveCount(0); // sold out

  // Nothing under $1: the page says so and offers to clear the filters.
  await page.getByTestId('filter-max-price').fill('1');
  await page.getByTestId('apply-filters').click();
  await expect(page.getByTestId('no-results')).toBeVisible();
  await page.getByTestId('clear-filters').click();
  await expect(page).toHaveURL(/\/search\?q=tea$/);
  await expect(page.getByTestId('product-card').first()).toBeVisible();
});

test('search works without script', async ({ browser }) => {
  const page = await (await browser.newContext({ javaScriptEnabled: false })).newPage();
  await page.goto('/');
  await page.getByTestId('search-input').fill('notebook');
  await page.getByTestId('search-button').click();
  await expect(page.getByTestId('product-card')).toContainText(['Dot Grid Notebook A5']);
  await page.getByTestId('filter-category').selectOption('books');
  await page.getByTestId('apply-filters').click();
  await expect(page).toHaveURL(/category=books/);
  await expect(page.getByTestId('product-card')).toContainText(['Dot Grid Notebook A5']);
});

test('a category page lists its products', async ({ page }, testInfo) => {
  await open(page, '/c/outdoors');
  await expect(page.getByTestId('results-heading')).toHaveText('Outdoors');
  await expect(page.getByTestId('product-card').filter({ hasText: 'Trail Backpack 28 l' })).toHaveCount(1);
  await expect(page.getByTestId('product-card').filter({ hasText: 'Sencha Green Tea' })).toHaveCount(0);
  await snap(page, testInfo, 'category-outdoors');
  await open(page, '/c/clothing');
  await expect(page.getByTestId('product-card')).toHaveCount(2);
  await page.goto('/c/no-such-shelf');
  await expect(page.getByTestId('not-found')).toBeVisible();
});

test('the header fits a phone: no link overlaps another, none wraps', async ({ browser }, testInfo) => {
  const page = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  await open(page, '/');
  const boxes = [];
  for (const link of await page.locator('.site-header a, .site-header button, .site-header input').all()) {
    if (!(await link.isVisible())) continue;
    const box = (await link.boundingBox())!;
    boxes.push({ text: (await link.textContent()) ?? '', ...box });
  }
  expect(boxes.length).toBeGreaterThan(3);
  for (const [i, a] of boxes.entries()) {
    // One line each: no taller than a line of text and its padding.
    expect(a.height, `${a.text} wraps`).toBeLessThan(48);
    for (const b of boxes.slice(i + 1)) {
      const overlap = a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
      expect(overlap, `"${a.text}" overlaps "${b.text}"`).toBeFalsy();
    }
  }
  await snap(page, testInfo, 'phone-header');
});
