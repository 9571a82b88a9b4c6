//! The parts of hybrid retrieval that do not care where chunks live: exact cosine search
//! over vectors held in memory, and reciprocal rank fusion of ranked lists.

/// The RRF constant of Cormack et al. (2009), untuned: the only judged data at hand is
/// SciFact's test split, and tuning on the data we report on would flatter the figures.
pub const RRF_K: f32 = 60.0;

/// Cosine similarity of two vectors of equal length; 0 when either is all zeros.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut aa, mut bb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    dot / (aa.sqrt() * bb.sqrt())
}

/// Scales a vector to unit length in place (a zero vector stays zero).
fn normalise(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Exact nearest neighbours by cosine. Exact, not approximate: at 50k chunks of 384
/// dimensions a full scan takes a few milliseconds, and nothing has to be tuned or kept
/// in sync. Vectors are normalised once on the way in, so a search is dot products.
pub struct DenseIndex {
    dimensions: usize,
    /// Row-major, one normalised vector a row.
    vectors: Vec<f32>,
    /// The caller's position of each row.
    positions: Vec<usize>,
    /// The row of each position, for scoring one item.
    rows: std::collections::HashMap<usize, usize>,
}

impl DenseIndex {
    pub fn new(dimensions: usize) -> Self {
        Self {
            dimensions,
            vectors: Vec::new(),
            positions: Vec::new(),
            rows: std::collections::HashMap::new(),
        }
    }

    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Number of vectors held.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Adds the vector of the caller's item `position`. A vector of another length is
    /// refused (`false`): it cannot come from the same model.
    pub fn push(&mut self, position: usize, mut vector: Vec<f32>) -> bool {
        if vector.len() != self.dimensions || self.dimensions == 0 {
            return false;
        }
        normalise(&mut vector);
        self.rows.insert(position, self.positions.len());
        self.vectors.extend_from_slice(&vector);
        self.positions.push(position);
        true
    }

    /// The cosine between `query` and the item at `position`, if it has a vector.
    pub fn similarity(&self, position: usize, query: &[f32]) -> Option<f32> {
        let row = *self.rows.get(&position)?;
        let start = row * self.dimensions;
        let vector = self.vectors.get(start..start + self.dimensions)?;
        (query.len() == self.dimensions).then(|| cosine(vector, query))
    }

    /// The `limit` items most similar to `query`, best first, as (position, cosine).
    /// `allowed`, indexed by position, keeps only the items it marks `true`.
    pub fn search(
        &self,
        query: &[f32],
        limit: usize,
        allowed: Option<&[bool]>,
    ) -> Vec<(usize, f32)> {
        if query.len() != self.dimensions || limit == 0 || self.dimensions == 0 {
            return Vec::new();
        }
        let mut query = query.to_vec();
        normalise(&mut query);
        let mut scored: Vec<(usize, f32)> = self
            .vectors
            .chunks_exact(self.dimensions)
            .zip(&self.positions)
            .filter(|(_, position)| {
                allowed.is_none_or(|a| a.get(**position).copied().unwrap_or(false))
            })
            .map(|(row, &position)| {
                let dot = row.iter().zip(&query).map(|(x, y)| x * y).sum::<f32>();
                (position, dot)
            })
            .collect();
        let by_score = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if scored.len() > limit {
            scored.select_nth_unstable_by(limit - 1, by_score);
            scored.truncate(limit);
        }
        scored.sort_unstable_by(by_score);
        scored
    }
}

/// Reciprocal rank fusion: an item scores Σ 1 / (k + rank) over the lists it appears in
/// (rank from 1). It needs no score calibration between BM25 and cosine, which live on
/// unrelated scales. Best first; ties go to the smaller position, so it is stable.
pub fn reciprocal_rank_fusion(lists: &[&[usize]], k: f32) -> Vec<(usize, f32)> {
    let mut scores: std::collections::HashMap<usize, f32> = std::collections::HashMap::new();
    for list in lists {
        for (rank, &item) in list.iter().enumerate() {
            *scores.entry(item).or_default() += 1.0 / (k + rank as f32 + 1.0);
        }
    }
    let mut fused: Vec<(usize, f32)> = scores.into_iter().collect();
    fused.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_parallel_orthogonal_and_opposite_vectors() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
        assert!((cosine(&[1.0, 1.0], &[-1.0, -1.0]) + 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn dense_search_ranks_by_cosine_and_honours_the_filter() {
        let mut index = DenseIndex::new(2);
        assert!(index.push(10, vec![1.0, 0.0]));
        assert!(index.push(11, vec![3.0, 3.0])); // not unit length: normalised on the way in
        assert!(index.push(12, vec![0.0, 1.0]));
        assert!(!index.push(13, vec![1.0, 0.0, 0.0]), "wrong length refused");
        assert_eq!(index.len(), 3);

        let hits = index.search(&[0.9, 0.1], 2, None);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [10, 11]);
        assert!((hits[1].1 - cosine(&[0.9, 0.1], &[1.0, 1.0])).abs() < 1e-6);
        let one = index.similarity(11, &[0.9, 0.1]).expect("has a vector");
        assert!((one - hits[1].1).abs() < 1e-6);
        assert_eq!(index.similarity(13, &[0.9, 0.1]), None);

        let mut allowed = vec![false; 13];
        allowed[12] = true;
        let hits = index.search(&[0.9, 0.1], 2, Some(&allowed));
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [12]);
        assert!(
            index.search(&[1.0], 2, None).is_empty(),
            "query of another model"
        );
    }

    #[test]
    fn rrf_rewards_items_both_lists_rank_well() {
        // 7 is second in both lists; 1 and 2 top one list each but miss the other.
        let keyword = [1, 7, 3];
        let dense = [2, 7, 4];
        let fused = reciprocal_rank_fusion(&[&keyword, &dense], 60.0);
        assert_eq!(fused[0].0, 7);
        assert!((fused[0].1 - 2.0 / 62.0).abs() < 1e-6);
        assert_eq!((fused[1].0, fused[2].0), (1, 2), "ties by position");
        assert!((fused[1].1 - 1.0 / 61.0).abs() < 1e-6);
        assert_eq!(fused.len(), 5);
        assert!(reciprocal_rank_fusion(&[], 60.0).is_empty());
    }
}
