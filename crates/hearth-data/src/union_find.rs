//! Union-find over document indices whose root is always the smallest member, so "keep
//! the root" keeps the first document of each cluster in input order, whatever order the
//! unions came in.

/// Disjoint sets of `0..n`.
#[derive(Debug, Clone)]
pub struct UnionFind {
    parent: Vec<u32>,
}

impl UnionFind {
    /// `n` singleton sets.
    pub fn new(n: usize) -> UnionFind {
        UnionFind {
            parent: (0..n as u32).collect(),
        }
    }

    /// The smallest member of `x`'s set.
    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }

    /// Merges the sets of `a` and `b`; returns whether they were apart.
    pub fn union(&mut self, a: u32, b: u32) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent[hi as usize] = lo;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_smallest_member_in_any_union_order() {
        let mut u = UnionFind::new(6);
        assert!(u.union(5, 3));
        assert!(u.union(3, 4));
        assert!(u.union(4, 1));
        assert!(!u.union(5, 1));
        for x in [1, 3, 4, 5] {
            assert_eq!(u.find(x), 1);
        }
        assert_eq!(u.find(0), 0);
        assert_eq!(u.find(2), 2);
    }
}
