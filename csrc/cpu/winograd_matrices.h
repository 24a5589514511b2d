// The transform matrices of the Winograd algorithms F(m x m, r x r) the CPU
// convolution uses: Y = A^T [(G g G^T) . (B^T d B)] A for a tile d of
// alpha x alpha inputs (alpha = m + r - 1), an r x r kernel g and m x m outputs Y.
//
// Both come from the Cook-Toom construction over the points listed (and the point
// at infinity): A^T[i][k] = a_k^i; G[k][j] = a_k^j / prod_{l != k} (a_k - a_l);
// row k of B^T holds the coefficients of prod_{l != k} (x - a_l), the last row those
// of prod_l (x - a_l). F(2, 3) is the classic set of Lavin & Gray (2016) (points
// 0, 1, -1, with its signs); F(2, 5) uses the points 0, 1, -1, 2, -2. The
// identity was checked in exact arithmetic; tests compare against torch in float64.
#pragma once

namespace zoo::cpu::winograd {

// F(2x2, 3x3): 16 products per tile instead of 36.
struct F2x3 {
  static constexpr int m = 2, r = 3, alpha = 4;
  static constexpr double AT[m][alpha] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
  static constexpr double G[alpha][r] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  static constexpr double BT[alpha][alpha] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
};

// F(2x2, 5x5): 36 products per tile instead of 100.
struct F2x5 {
  static constexpr int m = 2, r = 5, alpha = 6;
  static constexpr double AT[m][alpha] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 1}};
  static constexpr double G[alpha][r] = {{1.0 / 4, 0, 0, 0, 0},
                                         {-1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6},
                                         {-1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6},
                                         {1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 3, 2.0 / 3},
                                         {1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3, 2.0 / 3},
                                         {0, 0, 0, 0, 1}};
  static constexpr double BT[alpha][alpha] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                              {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
};

}  // namespace zoo::cpu::winograd
