//! The words products and sellers are named with.

pub(super) const ADJ: &[&str] = &[
    "Silent",
    "Hidden",
    "Broken",
    "Golden",
    "Last",
    "Lost",
    "Quiet",
    "Wild",
    "Secret",
    "Distant",
    "Burning",
    "Frozen",
    "Northern",
    "Little",
    "Practical",
    "Modern",
    "Complete",
    "Essential",
];
pub(super) const NOUN: &[&str] = &[
    "River",
    "Garden",
    "Kingdom",
    "Algorithm",
    "Harbor",
    "Empire",
    "Orchard",
    "Machine",
    "Lantern",
    "Mountain",
    "Library",
    "Compass",
    "Winter",
    "Signal",
    "Island",
    "Theory",
    "Atlas",
    "Voyage",
];
pub(super) const FIRST: &[&str] = &[
    "Anna", "James", "Maria", "David", "Elena", "Robert", "Sofia", "Thomas", "Laura", "Peter",
];
pub(super) const LAST: &[&str] = &[
    "Keller",
    "Morgan",
    "Okafor",
    "Lindqvist",
    "Tanaka",
    "Rossi",
    "Novak",
    "Harper",
    "Duval",
];
pub(super) const BRANDS: &[&str] = &[
    "Northwind",
    "Acmeline",
    "Brightway",
    "Kestrel",
    "Orbis",
    "Tallis",
    "Verdant",
    "Lumio",
];
pub(super) const GOODS: &[&str] = &[
    "Wireless Earbuds",
    "Chef's Knife",
    "Jigsaw Puzzle 1000 Pieces",
    "Face Serum",
    "Yoga Mat",
    "USB-C Hub",
    "Throw Pillow",
    "Water Bottle",
    "Desk Lamp",
    "Travel Mug",
];

pub(super) fn pick<'a>(list: &'a [&'a str], h: u64) -> &'a str {
    list[(h % list.len() as u64) as usize]
}

pub(super) const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
