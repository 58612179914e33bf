//! The demo catalog that a fresh embedded database is seeded with, so that the
//! first `run` shows a shop worth clicking through. The credentials are listed in
//! the README; they are for a laptop, never for a deployment.

use crate::Shop;
use crate::accounts::User;
use crate::domain::{Description, Email, InventoryMode, Money, Password, PersonName, ProductId, Quantity, Role, StockLevel, Title};
use crate::orders::{LineRequest, ShippingAddress, WaybillInput};
use crate::services::orders::PlaceOrder;
use crate::error::ShopResult;
use crate::services::accounts::NewAccount;
use crate::search::CategorySlug;
use crate::services::catalog::NewProduct;

pub struct DemoAccount {
    pub email: &'static str,
    pub password: &'static str,
    pub name: &'static str,
    pub role: Role,
}

pub const DEMO_BUYER: DemoAccount = DemoAccount { email: "buyer@ninefold.test", password: "buyer-demo-pass", name: "Bea Buyer", role: Role::Buyer };
pub const DEMO_SELLER: DemoAccount = DemoAccount { email: "seller@ninefold.test", password: "seller-demo-pass", name: "Tea & Kettle Co.", role: Role::Seller };
pub const DEMO_ADMIN: DemoAccount = DemoAccount { email: "admin@ninefold.test", password: "admin-demo-pass", name: "Ada Admin", role: Role::Admin };
const OTHER_SELLERS: [DemoAccount; 2] = [
    DemoAccount { email: "seller2@ninefold.test", password: "seller-demo-pass", name: "Northwind Outfitters", role: Role::Seller },
    DemoAccount { email: "seller3@ninefold.test", password: "seller-demo-pass", name: "Paper & Ink", role: Role::Seller },
];

/// (seller index, title, description, price in cents, stock, mode)
type DemoProduct = (usize, &'static str, &'static str, i64, i64, InventoryMode);

const PRODUCTS: [DemoProduct; 27] = {
    use InventoryMode::{OnOrder, OnPayment, Reserve};
    [
        (0, "Sencha Green Tea, 100 g", "Steamed Japanese green tea with a fresh, grassy cup.", 1250, 120, Reserve),
        (0, "Assam Breakfast Tea, 250 g", "Malty and strong; takes milk well.", 990, 300, OnOrder),
        (0, "Cast Iron Kettle, 1.2 l", "Enamelled inside, keeps tea hot for an hour.", 6400, 12, Reserve),
        (0, "Glass Teapot with Infuser", "Heat-proof borosilicate, 800 ml.", 2890, 40, OnPayment),
        (0, "Oolong Sampler", "Five oolongs from light to roasted, 25 g each.", 2400, 0, Reserve),
        (0, "Matcha Whisk (Chasen)", "Hand-carved bamboo, 100 prongs.", 1800, 25, OnOrder),
        (0, "Earl Grey Loose Leaf, 200 g", "Black tea with bergamot oil.", 1100, 80, Reserve),
        (0, "Tea Tasting Cups, set of 4", "Porcelain, 90 ml.", 3200, 8, OnPayment),
        (0, "Single-Estate Darjeeling, 50 g", "First flush, muscatel notes. Limited lot.", 3900, 3, Reserve),
        (1, "Trail Backpack 28 l", "Water-resistant, with a ventilated back panel.", 8900, 35, Reserve),
        (1, "Merino Wool Socks", "Cushioned hiking socks, one pair.", 1599, 500, OnOrder),
        (1, "Insulated Bottle, 750 ml", "Keeps drinks cold for 24 hours.", 2999, 150, OnOrder),
        (1, "Camp Stove", "Compact gas stove with piezo ignition.", 4999, 20, Reserve),
        (1, "Rain Shell Jacket", "Three-layer waterproof shell, taped seams.", 18900, 10, OnPayment),
        (1, "Headlamp 400 lm", "Rechargeable, red night mode.", 3499, 60, Reserve),
        (1, "Two-Person Tent", "Freestanding, 1.9 kg.", 32900, 5, Reserve),
        (1, "Trekking Poles, pair", "Aluminium, flick-lock adjustment.", 5900, 0, OnOrder),
        (1, "First Aid Kit", "Compact kit for day hikes.", 1999, 90, OnPayment),
        (2, "Dot Grid Notebook A5", "120 g/m² paper, lay-flat binding.", 1899, 200, OnOrder),
        (2, "Fountain Pen, Fine Nib", "Steel nib, converter included.", 4500, 30, Reserve),
        (2, "Bottled Ink, Midnight Blue", "50 ml, water-based.", 1200, 75, OnOrder),
        (2, "Letterpress Cards, pack of 10", "Blank inside, with envelopes.", 2200, 40, OnPayment),
        (2, "Brass Pencil", "Refillable, takes 2 mm leads.", 3800, 15, Reserve),
        (2, "Washi Tape Set", "Six rolls in muted colours.", 899, 250, OnOrder),
        (2, "Leather Journal Cover", "Vegetable-tanned, fits A5.", 7900, 6, Reserve),
        (2, "Desk Calendar 2027", "Week-per-page, recycled paper.", 1499, 1, Reserve),
        (2, "Calligraphy Starter Set", "Oblique holder, three nibs, guide sheets.", 3100, 22, OnPayment),
    ]
};

/// Seeds the demo accounts and catalog unless the database already has accounts.
/// Returns whether it seeded.
pub async fn seed_demo_if_empty(shop: &Shop) -> ShopResult<bool> {
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(shop.databases.main.pool()).await?;
    if users > 0 {
        return Ok(false);
    }
    let buyer = register(shop, &DEMO_BUYER).await?;
    register(shop, &DEMO_ADMIN).await?;
    let mut sellers = vec![register(shop, &DEMO_SELLER).await?];
    for account in &OTHER_SELLERS {
        sellers.push(register(shop, account).await?);
    }
    let mut created = Vec::with_capacity(PRODUCTS.len());
    for (seller, title, description, price_cents, stock, mode) in PRODUCTS {
        let product = NewProduct {
            title: Title::parse("title", title)?,
            description: Description::parse("description", description)?,
            price: Money::parse_price("price_cents", price_cents)?,
            stock: StockLevel::parse("stock", stock)?,
            inventory_mode: mode,
            categories: demo_categories(seller, title)?,
        };
        let id = shop.catalog.create(&sellers[seller], product).await?.id;
        shop.images.add(&sellers[seller], id, demo_picture(title).into(), Some("image/png"), title.to_owned()).await?;
        created.push(id);
    }
    seed_demo_orders(shop, &buyer, &sellers[0], &created).await?;
    tracing::info!(products = PRODUCTS.len(), "seeded the demo catalog, a wallet and a few orders");
    Ok(true)
}

/// The demo buyer starts with money in the wallet and has bought from the demo
/// seller already: one order paid, one shipped with a waybill, one completed and
/// one cancelled, so "My orders", the wallet and the dashboard show something on
/// the first start.
async fn seed_demo_orders(shop: &Shop, buyer: &User, seller: &User, products: &[ProductId]) -> ShopResult<()> {
    if !shop.ledger.top_up_policy().enabled {
        return Ok(()); // no demo money on this shop, so nothing to pay with
    }
    shop.ledger.top_up(buyer, Money::parse_top_up("amount_cents", 50_000)?, "demo-seed").await?;
    let address = ShippingAddress {
        name: DEMO_BUYER.name.to_owned(),
        line1: "1 Tea Street".to_owned(),
        line2: String::new(),
        city: "Leafton".to_owned(),
        postal_code: "12345".to_owned(),
        country: "Netherlands".to_owned(),
    };
    // Sencha completed, the glass teapot shipped, Earl Grey paid, Assam cancelled.
    let plans = [(0, "completed"), (3, "shipped"), (6, "paid"), (1, "cancelled")];
    for (index, plan) in plans {
        let lines = vec![LineRequest { product_id: products[index], quantity: Quantity::parse("quantity", 1)? }];
        let checkout = shop.checkouts.open(buyer, lines).await?;
        let request = PlaceOrder {
            order_id: checkout.order_id,
            checkout_token: crate::services::checkout::checkout_token(&checkout.checkout_token)?,
            lines: None,
            shipping_address: address.clone(),
            expected_total_cents: None,
        };
        let id = shop.orders.place(buyer, request).await?.order.id;
        if plan == "cancelled" {
            shop.payments.cancel(buyer, id).await?;
            continue;
        }
        shop.payments.pay(buyer, id).await?;
        if plan == "paid" {
            continue;
        }
        shop.shipping.set_waybill(seller, id, 0, WaybillInput::parse("DHL", &format!("JD{:010}", id.get() % 10_000_000_000))?).await?;
        if plan == "completed" {
            shop.payments.confirm_receipt(buyer, id).await?;
        }
    }
    Ok(())
}

/// A picture for a demo product, drawn here (no download): soft diagonal bands in
/// a colour taken from the title, so each product looks different.
fn demo_picture(title: &str) -> Vec<u8> {
    let seed = title.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let base = [(seed & 0xff) as u8, ((seed >> 8) & 0xff) as u8, ((seed >> 16) & 0xff) as u8];
    let picture = image::RgbImage::from_fn(480, 360, |x, y| {
        let band = ((x + y * 2) / 40) % 2 == 0;
        let shade = |c: u8| if band { c / 2 + 100 } else { c / 3 + 140 };
        image::Rgb([shade(base[0]), shade(base[1]), shade(base[2])])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(picture).write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).expect("a PNG encodes into memory");
    out
}

/// Each demo seller's shelf, and clothing where it is clothing.
fn demo_categories(seller: usize, title: &str) -> ShopResult<Vec<CategorySlug>> {
    let shelf = ["kitchen", "outdoors", "books"][seller];
    let mut slugs = vec![shelf];
    if title.contains("Socks") || title.contains("Jacket") {
        slugs.push("clothing");
    }
    Ok(slugs.into_iter().map(|slug| CategorySlug::parse("categories", slug)).collect::<Result<_, _>>()?)
}

async fn register(shop: &Shop, account: &DemoAccount) -> ShopResult<crate::accounts::User> {
    shop.accounts
        .register(NewAccount {
            email: Email::parse("email", account.email)?,
            password: Password::parse("password", account.password)?,
            name: PersonName::parse("name", account.name)?,
            role: account.role,
        })
        .await
}
